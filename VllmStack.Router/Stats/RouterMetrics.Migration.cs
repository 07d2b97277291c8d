using System.Diagnostics.Metrics;

namespace VllmStack.Router.Stats;

/// <summary>Mid-stream migration's metrics (kept apart from the rest of the router's).</summary>
public sealed partial class RouterMetrics
{
    private static readonly double[] MigrationDelayBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    private Counter<long> _migrations = null!;
    private Histogram<double> _migrationDelay = null!;

    private void CreateMigrationInstruments()
    {
        _migrations = _meter.CreateCounter<long>("vllmstack:router_stream_migrations", null,
            "Streams whose engine failed mid-response, by the failure (reason) and what became of the stream (outcome): resumed at "
            + "another engine, failed (the continuation's engine failed before resuming), no_engine, limit (migrations used up), "
            + "not_continuable (error frame as without migration), finished (only the end was missing).");
        _migrationDelay = _meter.CreateHistogram<double>("vllmstack:router_migration_delay_seconds", "s",
            "Delay a migration added to a stream: from the engine failure's detection to the continuation's first event reaching the client.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = MigrationDelayBuckets });
    }

    public void Migration(string reason, string outcome) =>
        _migrations.Add(1, new KeyValuePair<string, object?>("reason", reason), new KeyValuePair<string, object?>("outcome", outcome));

    public void MigrationResumed(string reason, double seconds)
    {
        Migration(reason, "resumed");
        _migrationDelay.Record(seconds);
    }
}
