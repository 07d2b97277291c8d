using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.ServiceDefaults;

/// <summary>What a service adds to the shared defaults: its own meters and activity sources.</summary>
public sealed class ServiceDefaultsOptions
{
    /// <summary>Meters exported over OTLP besides the framework's (wildcards allowed). Prometheus exports every meter.</summary>
    public List<string> Meters { get; } = ["VllmStack.*"];

    /// <summary>Activity sources traced besides ASP.NET Core's and HttpClient's (wildcards allowed).</summary>
    public List<string> ActivitySources { get; } = ["VllmStack.*"];

    /// <summary>Timeout for outgoing HttpClient calls made through IHttpClientFactory.</summary>
    public TimeSpan HttpClientTimeout { get; set; } = TimeSpan.FromSeconds(100);

    /// <summary>The <c>/metrics</c> exposition: path, filter, series cap, number format, default buckets.</summary>
    public PrometheusExporterOptions Prometheus { get; } = new();

    /// <summary>
    /// Request paths whose server spans are not traced: health probes, scrapes and a service's own background endpoints
    /// (called every second or so, they would bury the traces of the requests users make; their timings stay in the
    /// metrics). <c>/health</c>, <c>/alive</c> and the metrics path are always in it.
    /// </summary>
    public HashSet<string> UntracedPaths { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// How long a service waits at shutdown for its last telemetry to be exported. Short: when the collector (the Aspire
    /// dashboard, locally) has already gone, the exporter would otherwise retry for its whole timeout and hold up the stop.
    /// </summary>
    public TimeSpan TelemetryShutdownTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Connect timeout for outgoing HTTP connections.</summary>
    public TimeSpan HttpConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
