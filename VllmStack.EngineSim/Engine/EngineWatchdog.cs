using VllmStack.EngineSim.Configuration;

namespace VllmStack.EngineSim.Engine;

/// <summary>
/// vLLM's API-server watchdog (<c>vllm/entrypoints/launcher.py</c> <c>watchdog_loop</c>): every 5 s it looks at the
/// engine, and once the engine core is dead it shuts the server down, unless <c>VLLM_KEEP_ALIVE_ON_ENGINE_DEATH</c> is
/// set. The simulator stops exactly 5 s after the death (vLLM: within 5 s), so that the 503 window is testable.
/// </summary>
public sealed class EngineWatchdog(Scheduler scheduler, EngineOptions options, IHostApplicationLifetime lifetime, ILogger<EngineWatchdog> logger)
    : BackgroundService
{
    /// <summary>vLLM's <c>VLLM_WATCHDOG_TIME_S</c>.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await scheduler.Dead.WaitAsync(stoppingToken);
            logger.LogCritical("Engine core died: {Message}", EngineDeadException.EngineDeadMessage);
            if (options.KeepAliveOnEngineDeath)
            {
                return;
            }
            await Task.Delay(Interval, stoppingToken);
            logger.LogCritical("Shutting the server down: its engine core is dead");
            lifetime.StopApplication();
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Shut down for another reason first.
        }
    }
}
