using System.Diagnostics.Metrics;

namespace VllmStack.Router.Stats;

/// <summary>The LoRA adapter manager's metrics (Lora/LoraAdapterManager).</summary>
public sealed partial class RouterMetrics
{
    private static readonly double[] LoraLoadBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

    private Counter<long> _loraLoads = null!;
    private Counter<long> _loraUnloads = null!;
    private Histogram<double> _loraLoadDuration = null!;
    private Counter<long> _loraRequests = null!;
    private Counter<long> _loraLoadWaits = null!;

    private void CreateLoraInstruments()
    {
        _loraLoads = _meter.CreateCounter<long>("vllmstack:router_lora_adapter_loads", null,
            "LoRA adapter loads the router made, by why (demand: no engine held it; replicate: a hot adapter onto one more engine; "
            + "restore: an engine came back without it; on_miss: the engine routing chose lacked it) and outcome (ok, failed).");
        _loraUnloads = _meter.CreateCounter<long>("vllmstack:router_lora_adapter_unloads", null,
            "LoRA adapter unloads the router made, by why (lru: a full engine needed the slot; removed: the adapter left the catalogue).");
        _loraLoadDuration = _meter.CreateHistogram<double>("vllmstack:router_lora_adapter_load_duration_seconds", "s",
            "Time an engine took to load a LoRA adapter (vLLM's /v1/load_lora_adapter), successful or not.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LoraLoadBuckets });
        _loraRequests = _meter.CreateCounter<long>("vllmstack:router_lora_requests", null, "Requests for each LoRA adapter of the catalogue.");
        _loraLoadWaits = _meter.CreateCounter<long>("vllmstack:router_lora_load_waits", null,
            "Requests held while their adapter was loaded onto an engine, per adapter.");
    }

    public void LoraRequest(string adapter) => _loraRequests.Add(1, new KeyValuePair<string, object?>("adapter", adapter));

    public void LoraLoadWait(string adapter) => _loraLoadWaits.Add(1, new KeyValuePair<string, object?>("adapter", adapter));

    public void LoraLoad(string reason, string outcome, double seconds)
    {
        _loraLoads.Add(1, new KeyValuePair<string, object?>("reason", reason), new KeyValuePair<string, object?>("outcome", outcome));
        _loraLoadDuration.Record(seconds);
    }

    public void LoraUnload(string reason) => _loraUnloads.Add(1, new KeyValuePair<string, object?>("reason", reason));
}
