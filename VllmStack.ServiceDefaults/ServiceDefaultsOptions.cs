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

    /// <summary>Connect timeout for outgoing HTTP connections.</summary>
    public TimeSpan HttpConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
