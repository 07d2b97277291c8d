using System.Globalization;

namespace VllmStack.Redis;

/// <summary>Where the Redis server is and how a <see cref="RedisClient"/> talks to it.</summary>
public sealed record RedisConnectionOptions
{
    public const int DefaultPort = 6379;

    public string Host { get; init; } = "localhost";

    public int Port { get; init; } = DefaultPort;

    /// <summary>Optional ACL user name; AUTH is sent as <c>AUTH user password</c> when set.</summary>
    public string? User { get; init; }

    /// <summary>Sent with AUTH on every new connection, before any command; null for no AUTH.</summary>
    public string? Password { get; init; }

    /// <summary>Selected with SELECT on every new connection when it is not 0.</summary>
    public int Database { get; init; }

    /// <summary>Bounds opening the socket plus AUTH and SELECT.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Bounds every command from the moment it is queued until its reply has arrived.</summary>
    public TimeSpan CommandTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Number of TCP connections that commands are spread over (each one pipelines many commands).</summary>
    public int Connections { get; init; } = 2;

    /// <summary><c>host:port</c>, with IPv6 literals in brackets; used in every error message.</summary>
    public string Endpoint => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that cannot work.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Host))
        {
            throw new ArgumentException("Redis host is empty.", nameof(Host));
        }
        if (Port is < 1 or > 65535)
        {
            throw new ArgumentException($"Redis port {Port} is not between 1 and 65535.", nameof(Port));
        }
        if (Database < 0)
        {
            throw new ArgumentException($"Redis database {Database} is negative.", nameof(Database));
        }
        if (ConnectTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Redis connect timeout {ConnectTimeout} must be positive.", nameof(ConnectTimeout));
        }
        if (CommandTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Redis command timeout {CommandTimeout} must be positive.", nameof(CommandTimeout));
        }
        if (Connections is < 1 or > 64)
        {
            throw new ArgumentException($"Redis connection count {Connections} is not between 1 and 64.", nameof(Connections));
        }
    }

    /// <summary>
    /// Parses the StackExchange.Redis / Aspire form
    /// <c>host[:port][,password=…][,user=…][,defaultDatabase=N][,connectTimeout=ms][,syncTimeout=ms][,asyncTimeout=ms]</c>.
    /// Options StackExchange.Redis users commonly leave in (<c>abortConnect</c>, <c>allowAdmin</c>, <c>connectRetry</c>,
    /// <c>name</c>, <c>ssl=false</c>) are accepted and ignored; anything else is a <see cref="FormatException"/>.
    /// </summary>
    public static RedisConnectionOptions Parse(string connectionString)
    {
        ArgumentNullException.ThrowIfNull(connectionString);
        var parts = connectionString.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var options = new RedisConnectionOptions();
        var endpointSeen = false;
        foreach (var part in parts)
        {
            var equals = part.IndexOf('=', StringComparison.Ordinal);
            if (equals < 0)
            {
                if (endpointSeen)
                {
                    throw new FormatException(
                        $"Redis connection string '{Redact(connectionString)}' names more than one endpoint ('{part}'); only one server is supported.");
                }
                endpointSeen = true;
                var (host, port) = ParseEndpoint(part, connectionString);
                options = options with { Host = host, Port = port };
                continue;
            }
            var key = part[..equals].Trim();
            var value = part[(equals + 1)..].Trim();
            options = key.ToLowerInvariant() switch
            {
                "password" => options with { Password = value },
                "user" => options with { User = value.Length == 0 ? null : value },
                "defaultdatabase" => options with { Database = ParseInt(key, value, 0, int.MaxValue, connectionString) },
                "connecttimeout" => options with { ConnectTimeout = ParseMilliseconds(key, value, connectionString) },
                "synctimeout" or "asynctimeout" => options with { CommandTimeout = ParseMilliseconds(key, value, connectionString) },
                "ssl" when value.Equals("false", StringComparison.OrdinalIgnoreCase) => options,
                "ssl" => throw new FormatException(
                    $"Redis connection string '{Redact(connectionString)}' asks for ssl={value}; TLS is not supported by this client."),
                "abortconnect" or "allowadmin" or "connectretry" or "name" or "keepalive" => options,
                _ => throw new FormatException(
                    $"Redis connection string '{Redact(connectionString)}' has an unknown option '{key}'. " +
                    "Known: password, user, defaultDatabase, connectTimeout, syncTimeout, asyncTimeout."),
            };
        }
        if (!endpointSeen)
        {
            throw new FormatException($"Redis connection string '{Redact(connectionString)}' has no host[:port].");
        }
        return options;
    }

    /// <summary>Keeps passwords out of exception messages and logs.</summary>
    public override string ToString() =>
        $"{Endpoint}{(Password is null ? "" : ",password=*****")}{(User is null ? "" : ",user=" + User)}," +
        $"defaultDatabase={Database},connectTimeout={(long)ConnectTimeout.TotalMilliseconds}," +
        $"syncTimeout={(long)CommandTimeout.TotalMilliseconds},connections={Connections}";

    private static (string Host, int Port) ParseEndpoint(string text, string connectionString)
    {
        string host;
        string? portText = null;
        if (text.StartsWith('['))
        {
            // [::1]:6379 — an IPv6 literal keeps its colons inside the brackets.
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw new FormatException($"Redis endpoint '{text}' in '{Redact(connectionString)}' has '[' without ']'.");
            }
            host = text[1..close];
            var rest = text[(close + 1)..];
            if (rest.Length > 0)
            {
                portText = rest.StartsWith(':') ? rest[1..] : throw new FormatException(
                    $"Redis endpoint '{text}' in '{Redact(connectionString)}' has '{rest}' after the IPv6 address; expected ':port'.");
            }
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon >= 0 && text.IndexOf(':', StringComparison.Ordinal) != colon)
            {
                throw new FormatException(
                    $"Redis endpoint '{text}' in '{Redact(connectionString)}' looks like an IPv6 address; write it as [address]:port.");
            }
            host = colon < 0 ? text : text[..colon];
            portText = colon < 0 ? null : text[(colon + 1)..];
        }
        if (host.Length == 0)
        {
            throw new FormatException($"Redis endpoint '{text}' in '{Redact(connectionString)}' has no host.");
        }
        var port = portText is null ? DefaultPort : ParseInt("port", portText, 1, 65535, connectionString);
        return (host, port);
    }

    private static int ParseInt(string key, string value, int min, int max, string connectionString) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number >= min && number <= max
            ? number
            : throw new FormatException(
                $"Redis connection string '{Redact(connectionString)}': {key} '{value}' is not a whole number between {min} and {max}.");

    private static TimeSpan ParseMilliseconds(string key, string value, string connectionString) =>
        TimeSpan.FromMilliseconds(ParseInt(key + " (milliseconds)", value, 1, int.MaxValue, connectionString));

    private static string Redact(string connectionString)
    {
        var parts = connectionString.Split(',');
        for (var i = 0; i < parts.Length; i++)
        {
            if (parts[i].TrimStart().StartsWith("password=", StringComparison.OrdinalIgnoreCase))
            {
                parts[i] = "password=*****";
            }
        }
        return string.Join(',', parts);
    }
}
