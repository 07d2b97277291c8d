using Microsoft.Extensions.Diagnostics.HealthChecks;
using VllmStack.Router.Engines;

namespace VllmStack.Router.Health;

/// <summary>Degraded (still 200) while no engine may receive traffic: the router itself works and answers 503 per request.</summary>
public sealed class EnginesHealthCheck(EngineRegistry registry) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var engines = registry.Engines;
        var now = DateTimeOffset.UtcNow;
        var routable = engines.Count(e => e.IsRoutable(now));
        return Task.FromResult(routable > 0
            ? HealthCheckResult.Healthy($"{routable} of {engines.Count} engines routable")
            : HealthCheckResult.Degraded($"no routable engine among {engines.Count}"));
    }
}
