using VllmStack.CacheServer.Stats;

namespace VllmStack.CacheServer.Pool;

/// <summary>Reads the pool's size from Redis every few seconds for the gauges (a scrape must not wait on Redis).</summary>
public sealed class PoolUsageRefresher(KvChunkPool pool, CacheMetrics metrics) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
        do
        {
            try
            {
                var (bytes, chunks) = await pool.UsageAsync(stoppingToken).ConfigureAwait(false);
                metrics.PoolUsage(bytes, chunks);
            }
            catch (PoolUnavailableException)
            {
                // The gauges keep their last values while Redis is down; /health says so.
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }
}
