using System.Diagnostics.Metrics;

namespace VllmStack.ServiceDefaults.Metrics;

public sealed class PrometheusExporterOptions
{
    /// <summary>Path of the scrape endpoint.</summary>
    public string Path { get; set; } = "/metrics";

    /// <summary>Which instruments are exported; every instrument of every meter when null.</summary>
    public Func<Instrument, bool>? InstrumentFilter { get; set; }

    /// <summary>Distinct tag sets kept per instrument before measurements go to the overflow series.</summary>
    public int MaxSeriesPerInstrument { get; set; } = 2000;

    /// <summary>Histogram buckets for instruments in seconds that give no advice of their own.</summary>
    public double[] DefaultSecondsBuckets { get; set; } = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    /// <summary>Histogram buckets for every other instrument without advice (OpenTelemetry's defaults).</summary>
    public double[] DefaultBuckets { get; set; } = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];
}
