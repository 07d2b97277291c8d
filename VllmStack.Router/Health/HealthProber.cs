using VllmStack.Router.Configuration;
using VllmStack.Router.Engines;

namespace VllmStack.Router.Health;

/// <summary>Active health: each engine's <c>/health</c> decides whether it may receive traffic.</summary>
public sealed class HealthProber(EngineRegistry registry, EngineControlClient client, RouterOptions options, ILogger<HealthProber> logger)
    : PeriodicEngineTask(registry, logger)
{
    protected override TimeSpan Interval => TimeSpan.FromSeconds(options.HealthProbeInterval);

    protected override async Task<bool> RunOnceAsync(Engine engine, CancellationToken cancellationToken)
    {
        var (ok, body) = await client.GetAsync(engine.Url, "health", cancellationToken).ConfigureAwait(false);
        if (ok != engine.ProbeHealthy)
        {
            if (ok)
            {
                logger.LogInformation("Engine {Engine} is healthy again", engine.Name);
            }
            else
            {
                logger.LogWarning("Engine {Engine} failed its health probe: {Reason}", engine.Name, body.Length > 200 ? body[..200] : body);
            }
        }
        engine.SetProbeHealthy(ok);
        return ok;
    }
}
