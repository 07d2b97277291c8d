using Microsoft.Extensions.Diagnostics.HealthChecks;
using VllmStack.Redis;

namespace VllmStack.CacheServer.Pool;

/// <summary>Degraded (still 200) while Redis does not answer: the index and lookups keep working without the pool.</summary>
public sealed class RedisHealthCheck(RedisClient redis, RedisAvailability availability) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(1));
            var rtt = await redis.PingAsync(timeout.Token).ConfigureAwait(false);
            return HealthCheckResult.Healthy($"Redis answers in {rtt.TotalMilliseconds:F2} ms");
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e) || e is OperationCanceledException)
        {
            availability.Failed(e);
            return HealthCheckResult.Degraded($"Redis unreachable: {e.Message}");
        }
    }
}
