using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;

namespace VllmStack.CacheServer.Pool;

/// <summary>Degraded (still 200) while Redis does not answer or refuses the pool: the index and lookups keep working without it.</summary>
public sealed class RedisHealthCheck(IConnectionMultiplexer redis, RedisAvailability availability) : IHealthCheck
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(1);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            var rtt = await redis.GetDatabase().PingAsync().WaitAsync(Timeout, cancellationToken).ConfigureAwait(false);
            // A Redis that answers PING may still refuse the pool's commands (scripting disabled, out of memory).
            return availability.IsAvailable
                ? HealthCheckResult.Healthy($"Redis answers in {rtt.TotalMilliseconds:F2} ms")
                : HealthCheckResult.Degraded($"Redis answers but the pool's last command failed: {availability.LastError}");
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e) || e is OperationCanceledException)
        {
            availability.Failed(e);
            return HealthCheckResult.Degraded($"Redis unreachable: {e.Message}");
        }
    }
}
