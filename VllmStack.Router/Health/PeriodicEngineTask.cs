using VllmStack.Router.Engines;

namespace VllmStack.Router.Health;

/// <summary>
/// Runs one small task against every known engine at a fixed interval, and at once for an engine that has
/// just appeared. Engines are handled in parallel; one slow engine delays nobody else.
/// </summary>
public abstract class PeriodicEngineTask(EngineRegistry registry, ILogger logger) : BackgroundService
{
    protected abstract TimeSpan Interval { get; }

    protected abstract Task RunOnceAsync(Engine engine, CancellationToken cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        void OnChanged(IReadOnlyList<Engine> added, IReadOnlyList<Engine> removed)
        {
            foreach (var engine in added)
            {
                _ = SafeRunAsync(engine, stoppingToken);
            }
        }
        registry.Changed += OnChanged;
        try
        {
            using var timer = new PeriodicTimer(Interval);
            do
            {
                await Task.WhenAll(registry.Engines.Select(e => SafeRunAsync(e, stoppingToken))).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            registry.Changed -= OnChanged;
        }
    }

    private async Task SafeRunAsync(Engine engine, CancellationToken cancellationToken)
    {
        try
        {
            await RunOnceAsync(engine, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            logger.LogDebug(e, "{Task} for {Engine} failed", GetType().Name, engine.Name);
        }
    }
}
