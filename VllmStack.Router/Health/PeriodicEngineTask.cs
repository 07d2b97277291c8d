using System.Collections.Concurrent;
using VllmStack.Router.Engines;

namespace VllmStack.Router.Health;

/// <summary>
/// Runs one small task against every known engine: at once for an engine that has just appeared, then every
/// <see cref="Interval"/> after a success, or after <see cref="RetryInterval"/> after a failure — so an engine that is
/// still starting is picked up within half a second of being ready, not a whole interval later. Engines are handled
/// in parallel; one slow engine delays nobody else.
/// </summary>
public abstract class PeriodicEngineTask(EngineRegistry registry, ILogger logger) : BackgroundService
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);
    private readonly ConcurrentDictionary<int, DateTimeOffset> _due = new();
    private readonly ConcurrentDictionary<int, byte> _running = new();

    protected abstract TimeSpan Interval { get; }

    protected virtual TimeSpan RetryInterval => TimeSpan.FromMilliseconds(500);

    /// <summary>True when the engine answered; false schedules a quick retry.</summary>
    protected abstract Task<bool> RunOnceAsync(Engine engine, CancellationToken cancellationToken);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            using var timer = new PeriodicTimer(Tick);
            do
            {
                var now = DateTimeOffset.UtcNow;
                var engines = registry.Engines;
                foreach (var gone in _due.Keys.Except(engines.Select(e => e.Id)).ToList())
                {
                    _due.TryRemove(gone, out _);
                }
                foreach (var engine in engines)
                {
                    if (_due.GetOrAdd(engine.Id, now) <= now && _running.TryAdd(engine.Id, 0))
                    {
                        _ = RunAsync(engine, stoppingToken);
                    }
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task RunAsync(Engine engine, CancellationToken cancellationToken)
    {
        var ok = false;
        try
        {
            ok = await RunOnceAsync(engine, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            logger.LogDebug(e, "{Task} for {Engine} failed", GetType().Name, engine.Name);
        }
        finally
        {
            _due[engine.Id] = DateTimeOffset.UtcNow + (ok ? Interval : RetryInterval);
            _running.TryRemove(engine.Id, out _);
        }
    }
}
