namespace VllmStack.CacheServer.Index;

/// <summary>Drops engines that stopped reporting, every few seconds, so the index does not keep departed engines' blocks.</summary>
public sealed class IndexExpiry(KvIndex index, ILogger<IndexExpiry> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            var expired = index.Expire();
            if (expired > 0)
            {
                logger.LogInformation("{Count} engines stopped reporting and left the KV index", expired);
            }
        }
    }
}
