using Microsoft.Extensions.Logging;

namespace VllmStack.Redis;

/// <summary>The client's log events; connection names are <c>#slot.generation</c>.</summary>
internal static partial class RedisLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Redis connection {Connection} to {Endpoint} open (database {Database})")]
    public static partial void Connected(ILogger logger, string connection, string endpoint, int database);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Redis connection {Connection} to {Endpoint} could not be opened: {Reason}")]
    public static partial void ConnectFailed(ILogger logger, string connection, string endpoint, string reason);

    // Repeats while a server is down are expected; one warning per outage is enough.
    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "Redis connection {Connection} to {Endpoint} still cannot be opened after {Attempts} attempts: {Reason}")]
    public static partial void ConnectStillFailing(ILogger logger, string connection, string endpoint, int attempts, string reason);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Redis connection {Connection} to {Endpoint} lost: {Reason}")]
    public static partial void ConnectionLost(ILogger logger, string connection, string endpoint, string reason);

    [LoggerMessage(EventId = 5, Level = LogLevel.Debug, Message = "Redis connection {Connection} to {Endpoint} closed: {Reason}")]
    public static partial void ConnectionClosed(ILogger logger, string connection, string endpoint, string reason);
}
