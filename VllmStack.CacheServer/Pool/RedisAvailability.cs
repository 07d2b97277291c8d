using StackExchange.Redis;

namespace VllmStack.CacheServer.Pool;

/// <summary>
/// A small circuit breaker: after Redis fails, the pool answers "unavailable" at once for a second instead of
/// waiting on every request, then tries again. Lookups stay fast and puts are dropped while Redis is down.
/// StackExchange.Redis reconnects by itself; its connection events open and close the breaker as well.
/// </summary>
public sealed class RedisAvailability(TimeProvider? clock = null)
{
    private static readonly TimeSpan OpenFor = TimeSpan.FromSeconds(1);
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private long _openUntilTicks;

    public bool IsAvailable => _clock.GetUtcNow().UtcTicks >= Interlocked.Read(ref _openUntilTicks);

    public string? LastError { get; private set; }

    public void Failed(Exception error) => Failed(error.Message);

    public void Failed(string reason)
    {
        LastError = reason;
        Interlocked.Exchange(ref _openUntilTicks, (_clock.GetUtcNow() + OpenFor).UtcTicks);
    }

    /// <summary>The connection is back: try Redis again at once.</summary>
    public void Restored() => Interlocked.Exchange(ref _openUntilTicks, 0);

    /// <summary>
    /// Redis is unreachable, too slow, or refuses what the pool asks (not ready after a restart: <c>LOADING</c>; out of
    /// memory, read-only, scripting disabled): the breaker's business, never a client's 500. Timeouts include
    /// StackExchange.Redis's own (<see cref="RedisTimeoutException"/> is a <see cref="TimeoutException"/>); a lookup over the
    /// pool's shorter bound is not one (<see cref="KvChunkPool.LeadingChunksAsync"/>).
    /// </summary>
    public static bool IsRedisFailure(Exception e) => e is RedisConnectionException or TimeoutException or RedisServerException;

    /// <summary>Opens and closes the breaker on the multiplexer's connection events, and says so in the log.</summary>
    public void Watch(IConnectionMultiplexer redis, ILogger logger)
    {
        redis.ConnectionFailed += (_, e) =>
        {
            Failed(e.Exception?.Message ?? e.FailureType.ToString());
            logger.LogWarning("Redis connection to {Endpoint} failed ({FailureType}): {Reason}", e.EndPoint, e.FailureType, e.Exception?.Message);
        };
        redis.ConnectionRestored += (_, e) =>
        {
            Restored();
            logger.LogInformation("Redis connection to {Endpoint} restored", e.EndPoint);
        };
    }
}
