namespace VllmStack.Redis;

/// <summary>Base of every error this client raises; catch it to handle all Redis failures at once.</summary>
public class RedisException : Exception
{
    public RedisException(string message)
        : base(message)
    {
    }

    public RedisException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// The server could not be reached, the handshake (AUTH, SELECT) failed, or the connection broke while the
/// command was queued or in flight. Whether a command that was in flight ran on the server is unknown.
/// </summary>
public sealed class RedisConnectionException : RedisException
{
    public RedisConnectionException(string endpoint, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Endpoint = endpoint;
    }

    public string Endpoint { get; }
}

/// <summary>
/// No reply arrived within the command timeout. The connection it was sent on has been dropped, because its
/// reply stream can no longer be matched to requests; the command may still run on the server.
/// </summary>
public sealed class RedisTimeoutException : RedisException
{
    public RedisTimeoutException(string endpoint, string command, TimeSpan timeout)
        : base($"Redis {endpoint}: {command} got no reply within {timeout.TotalMilliseconds:0} ms; the connection was dropped.")
    {
        Endpoint = endpoint;
        Command = command;
        Timeout = timeout;
    }

    public string Endpoint { get; }

    public string Command { get; }

    public TimeSpan Timeout { get; }
}

/// <summary>The server answered with an error reply (<c>-ERR …</c>, <c>-WRONGTYPE …</c>, <c>-NOAUTH …</c>).</summary>
public sealed class RedisServerException : RedisException
{
    public RedisServerException(string endpoint, string command, string serverMessage)
        : base($"Redis {endpoint}: {command} failed: {serverMessage}")
    {
        Endpoint = endpoint;
        Command = command;
        ServerMessage = serverMessage;
    }

    public string Endpoint { get; }

    public string Command { get; }

    /// <summary>The error exactly as the server sent it, e.g. <c>WRONGTYPE Operation against a key holding the wrong kind of value</c>.</summary>
    public string ServerMessage { get; }

    /// <summary>The first word of the error by Redis convention (<c>ERR</c>, <c>WRONGTYPE</c>, <c>NOAUTH</c>, <c>WRONGPASS</c>).</summary>
    public string ErrorCode
    {
        get
        {
            var space = ServerMessage.IndexOf(' ', StringComparison.Ordinal);
            return space < 0 ? ServerMessage : ServerMessage[..space];
        }
    }
}

/// <summary>A reply had a shape the command cannot have (e.g. an integer where GET returns a bulk string).</summary>
public sealed class RedisProtocolException : RedisException
{
    public RedisProtocolException(string message)
        : base(message)
    {
    }
}
