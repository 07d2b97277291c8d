using System.Diagnostics.Metrics;

namespace VllmStack.ServiceDefaults.Metrics;

/// <summary>How numbers (sample values, <c>le</c> bounds) are written; both forms parse to the same values.</summary>
public enum PrometheusNumberFormat
{
    /// <summary>Shortest round-trip, as Prometheus' Go client writes them: <c>1</c>, <c>0.005</c>, <c>1e+06</c>.</summary>
    Go,

    /// <summary>
    /// As Python's prometheus_client writes them (vLLM's exposition): <c>1.0</c>, <c>0.005</c>, <c>1e-05</c>,
    /// <c>1.234567e+06</c>; see <see cref="PythonFloat.GoString"/>.
    /// </summary>
    Python,
}

/// <summary>What the shared <c>/metrics</c> exposition exports and how it writes it.</summary>
public sealed class PrometheusExporterOptions
{
    /// <summary>Path of the scrape endpoint.</summary>
    public string Path { get; set; } = "/metrics";

    /// <summary>Which instruments are exported; every instrument of every meter when null.</summary>
    public Func<Instrument, bool>? InstrumentFilter { get; set; }

    /// <summary>Distinct tag sets kept per instrument before measurements go to the overflow series.</summary>
    public int MaxSeriesPerInstrument { get; set; } = 2000;

    /// <summary>
    /// How sample values and histogram <c>le</c> labels are written: <see cref="PrometheusNumberFormat.Go"/> (default)
    /// or, for a service that stands in for a Python server, <see cref="PrometheusNumberFormat.Python"/>.
    /// </summary>
    public PrometheusNumberFormat NumberFormat { get; set; } = PrometheusNumberFormat.Go;

    /// <summary>Histogram buckets for instruments in seconds that give no advice of their own.</summary>
    public double[] DefaultSecondsBuckets { get; set; } = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    /// <summary>
    /// Histogram buckets for every other instrument without advice (OpenTelemetry's defaults). A histogram whose advice
    /// gives an empty list of boundaries has no buckets and is written as a summary without quantiles (<c>_sum</c>,
    /// <c>_count</c>), as prometheus_client writes its <c>Summary</c>.
    /// </summary>
    public double[] DefaultBuckets { get; set; } = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];
}
