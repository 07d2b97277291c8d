using System.Text.RegularExpressions;
using Aspire.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Redis;

/// <summary>How a <see cref="RedisServerResource"/> runs.</summary>
public enum RedisServerKind
{
    /// <summary><c>redis-server</c> from PATH.</summary>
    RedisServer,

    /// <summary>Microsoft Garnet, the <c>garnet-server</c> dotnet tool of the repository's tool manifest (RESP-compatible).</summary>
    Garnet,
}

/// <summary>
/// A Redis-compatible server run by DCP as an executable — where Aspire's <c>RedisResource</c> (a container) cannot run,
/// as on machines without a container engine — with the connection string Aspire's Redis has: <c>host:port</c>, and
/// <c>,password=…</c> when a password is set. An in-memory cache: no snapshots, no append-only file, loopback only.
/// </summary>
public sealed partial class RedisServerResource(string name, RedisServerKind kind, string command, string workingDirectory)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    public const string PrimaryEndpointName = "tcp";

    public const string GarnetTool = "garnet-server";

    private EndpointReference? _primary;

    public RedisServerKind Kind { get; } = kind;

    /// <summary>The version the probe read (<c>7.0</c>, <c>2.2.8</c>), shown in the dashboard.</summary>
    public string? Version { get; init; }

    /// <summary>When set, the server requires this password (<c>AUTH</c>) and the connection string carries it.</summary>
    public ParameterResource? Password { get; set; }

    public EndpointReference PrimaryEndpoint => _primary ??= new(this, PrimaryEndpointName);

    public ReferenceExpression ConnectionStringExpression => Password is null
        ? ReferenceExpression.Create($"{PrimaryEndpoint.Property(EndpointProperty.HostAndPort)}")
        : ReferenceExpression.Create($"{PrimaryEndpoint.Property(EndpointProperty.HostAndPort)},password={Password}");

    /// <summary>As Aspire's Redis: referencing resources also get <c>CACHE_HOST</c>, <c>CACHE_PORT</c>, <c>CACHE_URI</c>.</summary>
    IEnumerable<KeyValuePair<string, ReferenceExpression>> IResourceWithConnectionString.GetConnectionProperties() =>
    [
        new("Host", ReferenceExpression.Create($"{PrimaryEndpoint.Property(EndpointProperty.Host)}")),
        new("Port", ReferenceExpression.Create($"{PrimaryEndpoint.Property(EndpointProperty.Port)}")),
        new("Uri", ReferenceExpression.Create($"redis://{PrimaryEndpoint.Property(EndpointProperty.HostAndPort)}")),
    ];

    public string Description => Kind == RedisServerKind.RedisServer
        ? Version is null ? "redis-server (PATH)" : $"redis-server {Version} (PATH)"
        : Version is null ? "Garnet (dotnet tool)" : $"Garnet {Version} (dotnet tool)";

    // "Redis server v=7.0.15 sha=…" → 7.0
    [GeneratedRegex(@"v=(\d+\.\d+)")]
    internal static partial Regex ServerVersion();

    // "GarnetServer 2.2.8+5cc8f3f…" → 2.2.8
    [GeneratedRegex(@"(\d+\.\d+\.\d+)")]
    internal static partial Regex GarnetVersion();
}
