using VllmStack.Redis;

namespace VllmStack.CacheServer.Pool;

/// <summary>
/// A small circuit breaker: after Redis fails, the pool answers "unavailable" at once for a second instead of
/// waiting on every request, then tries again. Lookups stay fast and puts are dropped while Redis is down.
/// </summary>
public sealed class RedisAvailability(TimeProvider? clock = null)
{
    private static readonly TimeSpan OpenFor = TimeSpan.FromSeconds(1);
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private long _openUntilTicks;

    public bool IsAvailable => _clock.GetUtcNow().UtcTicks >= Interlocked.Read(ref _openUntilTicks);

    public string? LastError { get; private set; }

    public void Failed(Exception error)
    {
        LastError = error.Message;
        Interlocked.Exchange(ref _openUntilTicks, (_clock.GetUtcNow() + OpenFor).UtcTicks);
    }

    public static bool IsRedisFailure(Exception e) => e is RedisConnectionException or RedisTimeoutException;
}
