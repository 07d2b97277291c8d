using System.Diagnostics;
using OpenTelemetry.Trace;

namespace VllmStack.ServiceDefaults.Telemetry;

/// <summary>
/// Keeps health probes and Prometheus scrapes out of the traces: they arrive every few seconds from
/// every probe and scraper and would drown the requests users make.
/// </summary>
internal sealed class ProbeFilteringSampler(Sampler inner, IReadOnlySet<string> ignoredPaths) : Sampler
{
    public override SamplingResult ShouldSample(in SamplingParameters samplingParameters)
    {
        if (samplingParameters.Kind == ActivityKind.Server && samplingParameters.Tags is { } tags)
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "url.path" && tag.Value is string path && ignoredPaths.Contains(path))
                {
                    return new SamplingResult(SamplingDecision.Drop);
                }
            }
        }
        return inner.ShouldSample(samplingParameters);
    }
}
