using VllmStack.Router.Configuration;
using VllmStack.Router.Engines;
using VllmStack.Router.Stats;

namespace VllmStack.Router.Health;

/// <summary>
/// Passive health in the manner of Envoy's outlier detection: engine-side failures (and only those) are counted per
/// engine; a streak ejects the engine for a back-off time, unless that would take out more than
/// <see cref="OutlierDetectionOptions.MaxEjectionPercent"/> of the model's engines or the last one. Which engines a
/// request may go to is decided here too, including panic routing when too few are left.
/// </summary>
public sealed class OutlierDetector(RouterOptions options, EngineRegistry registry, RouterMetrics metrics, ILogger<OutlierDetector> logger)
{
    private readonly OutlierDetectionOptions _options = options.OutlierDetection;

    // Ejection decisions read the other engines' state; one at a time, so that two cannot both pass the ceiling.
    private readonly Lock _ejecting = new();

    /// <summary>
    /// Engines that may take this request: those serving the model that pass their <c>/health</c> probes and are not
    /// ejected, less those already tried. When ejections leave fewer than the panic threshold of the probe-healthy
    /// engines, ejections are ignored (<paramref name="panic"/> is then true).
    /// </summary>
    public IReadOnlyList<Engine> Candidates(IReadOnlyList<Engine> serving, IReadOnlySet<int> tried, DateTimeOffset now, out bool panic)
    {
        var healthy = 0;
        var notEjected = 0;
        foreach (var engine in serving)
        {
            if (engine.ModelsKnown && engine.ProbeHealthy)
            {
                healthy++;
                notEjected += engine.IsEjected(now) ? 0 : 1;
            }
        }
        panic = healthy > 0 && notEjected * 100.0 < healthy * _options.PanicThresholdPercent;
        var candidates = new List<Engine>(serving.Count);
        foreach (var engine in serving)
        {
            if (engine.ModelsKnown && engine.ProbeHealthy && (panic || !engine.IsEjected(now)) && !tried.Contains(engine.Id))
            {
                candidates.Add(engine);
            }
        }
        return candidates;
    }

    /// <summary>The engine answered with a status below 500: not a failure, and its streaks start over.</summary>
    public void Answered(Engine engine) => engine.CountAnswer();

    /// <summary>
    /// Counts an engine-side failure of a request for <paramref name="model"/>; ejects the engine when a streak reaches its
    /// threshold and the model's ceiling allows. <paramref name="detail"/> says what happened, for the log.
    /// </summary>
    public void Failed(Engine engine, string model, EngineFailureKind kind, string detail)
    {
        var reason = kind.Reason();
        metrics.EngineFailed(engine, reason);
        var (gateway, serverErrors) = engine.CountFailure(kind.IsGatewayFailure());
        var tripped = gateway >= _options.ConsecutiveGatewayFailures || serverErrors >= _options.Consecutive5xx;
        if (!tripped)
        {
            logger.LogInformation("Engine {Engine} failed a request for {Model} ({Reason}: {Detail}); {Gateway} gateway failures and {ServerErrors} 5xx in a row",
                engine.Name, model, reason, detail, gateway, serverErrors);
            return;
        }
        lock (_ejecting)
        {
            var now = DateTimeOffset.UtcNow;
            if (engine.IsEjected(now))
            {
                return;
            }
            // The ceiling is over the engines of the base model: a LoRA adapter is often held by this engine alone,
            // and a ceiling over its holders would never let an engine that fails its requests be ejected.
            var group = engine.ModelInfos.FirstOrDefault(m => m.Id == model)?.Parent ?? model;
            var peers = registry.Engines.Where(e => e.Serves(group)).ToList();
            var ejected = peers.Count(e => e.IsEjected(now));
            var ceiling = MaxEjected(peers.Count);
            if (ejected + 1 > ceiling)
            {
                metrics.EjectionSkipped(engine, reason);
                logger.LogWarning(
                    "Engine {Engine} failed ({Reason}: {Detail}) but stays in: {Ejected} of the {Count} engines of {Model} are ejected already, at most {Ceiling} may be",
                    engine.Name, reason, detail, ejected, peers.Count, group, ceiling);
                return;
            }
            var duration = engine.Eject(now, TimeSpan.FromSeconds(_options.BaseEjectionSeconds), TimeSpan.FromSeconds(_options.MaxEjectionSeconds));
            metrics.Ejected(engine, reason);
            logger.LogWarning("Ejecting engine {Engine} for {Seconds:F1} s after {Reason} ({Detail}); {Ejected} of the {Count} engines of {Model} now ejected",
                engine.Name, duration.TotalSeconds, reason, detail, ejected + 1, peers.Count, group);
        }
    }

    /// <summary>How many of <paramref name="engines"/> engines may be ejected at once: the configured share, and never all.</summary>
    public int MaxEjected(int engines) => Math.Max(0, Math.Min(engines - 1, (int)Math.Floor(engines * _options.MaxEjectionPercent / 100.0)));
}
