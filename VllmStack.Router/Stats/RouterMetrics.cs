using System.Diagnostics.Metrics;
using VllmStack.Router.Engines;

namespace VllmStack.Router.Stats;

/// <summary>
/// The router's metrics: the Production Stack router's names with label <c>server</c> (the engine URL), read
/// at scrape time from the registry, plus the router's own counters and its added-latency histogram.
/// </summary>
public sealed partial class RouterMetrics : IDisposable
{
    public const string MeterName = "VllmStack.Router";

    private static readonly double[] LatencyBuckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];
    private static readonly double[] OverheadBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1];

    /// <summary>
    /// What the router's <c>/metrics</c> exposes: its own meters and the runtime's, not the runtime's per-request HTTP
    /// meters (Kestrel, ASP.NET Core hosting and routing, HttpClient), which the Production Stack router does not expose
    /// either: recording them cost the router about a tenth of its maximum throughput (<c>VllmStack.Bench router</c>, a
    /// build with and one without, 7 runs side by side). OTLP still carries them when telemetry is on.
    /// </summary>
    public static bool Exported(Instrument instrument) =>
        !instrument.Meter.Name.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal)
        && !instrument.Meter.Name.StartsWith("System.Net", StringComparison.Ordinal);

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _incoming;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _engineFailures;
    private readonly Counter<long> _ejections;
    private readonly Counter<long> _ejectionsSkipped;
    private readonly Counter<long> _panicRouted;
    private readonly Counter<long> _keepAlives;
    private readonly Histogram<double> _latency;
    private readonly Histogram<double> _added;

    public RouterMetrics(EngineRegistry registry, Routing.KvLookupClient? kvLookup = null)
    {
        if (kvLookup is not null)
        {
            _meter.CreateObservableCounter("vllmstack:router_kv_lookup_fallbacks", () => kvLookup.Fallbacks, null,
                "kvaware requests routed by load alone because the tokenize + cache-server lookup failed or ran out of time.");
        }
        _incoming = _meter.CreateCounter<long>("vllm:num_incoming_requests", null, "Requests the router sent to each engine.");
        _retries = _meter.CreateCounter<long>("vllmstack:router_retries", null, "Attempts that failed over to another engine, by engine and reason.");
        _rejected = _meter.CreateCounter<long>("vllmstack:router_rejected_requests", null, "Requests answered by the router itself with an error, by reason.");
        _engineFailures = _meter.CreateCounter<long>("vllmstack:router_engine_failures", null,
            "Engine-side failures (connect, reset, timeouts, 5xx answers) held against each engine, by reason.");
        _ejections = _meter.CreateCounter<long>("vllmstack:router_ejections", null, "Times an engine was ejected by outlier detection, by engine and reason.");
        _ejectionsSkipped = _meter.CreateCounter<long>("vllmstack:router_ejections_skipped", null,
            "Ejections not made because the model's ceiling (MaxEjectionPercent, never the last engine) was reached.");
        _panicRouted = _meter.CreateCounter<long>("vllmstack:router_panic_routed_requests", null,
            "Requests routed while too few engines were left after ejections, so ejections were ignored (panic threshold).");
        _keepAlives = _meter.CreateCounter<long>("vllmstack:router_sse_keepalives", null,
            "SSE comment lines sent to clients while their stream waited for its first token.");
        _latency = _meter.CreateHistogram<double>("vllm:request_latency_seconds", "s", "End-to-end request latency through the router, per engine.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });
        _added = _meter.CreateHistogram<double>("vllmstack:router_added_latency_seconds", "s",
            "Time the router itself adds to a request: reading and routing it, and relaying the response headers.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = OverheadBuckets });

        CreateMigrationInstruments();
        CreateLoraInstruments();

        PerEngine("vllm:current_qps", "Requests per second to each engine over the stats window.", registry, e => e.Stats.Snapshot().Qps);
        PerEngine("vllm:avg_latency", "Average request latency per engine over the stats window, in seconds.", registry, e => e.Stats.Snapshot().AvgLatency);
        PerEngine("vllm:avg_itl", "Average time between streamed chunks per engine over the stats window, in seconds.", registry, e => e.Stats.Snapshot().AvgItl);
        PerEngine("vllm:avg_ttft", "Average time to first byte per engine over the stats window, in seconds.", registry, e => e.Stats.Snapshot().AvgTtft);
        PerEngine("vllm:num_requests_running", "Running requests each engine last reported.", registry, e => e.Load.Running);
        PerEngine("vllm:num_requests_waiting", "Waiting requests each engine last reported.", registry, e => e.Load.Waiting);
        PerEngine("vllm:kv_cache_usage_perc", "KV-cache usage each engine last reported (1 = full).", registry, e => e.Load.KvCacheUsage);
        PerEngine("vllm:prefix_cache_hit_rate", "Prefix-cache hit rate each engine reports (hits / queries, cumulative).", registry, e => e.Load.PrefixCacheHitRate);
        PerEngine("vllmstack:router_in_flight_requests", "Requests the router has in flight to each engine.", registry, e => e.InFlight);
        PerEngine("vllmstack:router_engine_routable", "1 when the engine may receive traffic (models known, healthy, not ejected).", registry,
            e => e.IsRoutable(DateTimeOffset.UtcNow) ? 1 : 0);
        _meter.CreateObservableGauge("vllm:healthy_pods_total", () => (long)registry.Engines.Count(e => e.IsRoutable(DateTimeOffset.UtcNow)),
            null, "Engines that may receive traffic.");
    }

    public void Incoming(Engine engine) => _incoming.Add(1, new KeyValuePair<string, object?>("server", engine.Name));

    public void Retried(Engine engine, string reason) =>
        _retries.Add(1, new KeyValuePair<string, object?>("server", engine.Name), new KeyValuePair<string, object?>("reason", reason));

    public void EngineFailed(Engine engine, string reason) =>
        _engineFailures.Add(1, new KeyValuePair<string, object?>("server", engine.Name), new KeyValuePair<string, object?>("reason", reason));

    public void Ejected(Engine engine, string reason) =>
        _ejections.Add(1, new KeyValuePair<string, object?>("server", engine.Name), new KeyValuePair<string, object?>("reason", reason));

    public void EjectionSkipped(Engine engine, string reason) =>
        _ejectionsSkipped.Add(1, new KeyValuePair<string, object?>("server", engine.Name), new KeyValuePair<string, object?>("reason", reason));

    public void PanicRouted() => _panicRouted.Add(1);

    public void KeepAliveSent() => _keepAlives.Add(1);

    public void Rejected(string reason) => _rejected.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void Completed(Engine engine, double seconds) => _latency.Record(seconds, new KeyValuePair<string, object?>("server", engine.Name));

    public void AddedLatency(double seconds) => _added.Record(seconds);

    private void PerEngine(string name, string help, EngineRegistry registry, Func<Engine, double> value) =>
        _meter.CreateObservableGauge(name, () => registry.Engines.Select(e => new Measurement<double>(value(e), new KeyValuePair<string, object?>("server", e.Name))),
            null, help);

    public void Dispose() => _meter.Dispose();
}
