using System.Diagnostics;
using System.Diagnostics.Metrics;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;

namespace VllmStack.EngineSim.Metrics;

/// <summary>
/// vLLM V1's metrics, under vLLM's names, labels (<c>model_name</c>, <c>engine</c>) and buckets, all fed by the
/// engine model. Counters are named without <c>_total</c>: the Prometheus exposition adds it, as vLLM's does.
/// </summary>
public sealed class EngineMetrics : IDisposable
{
    public const string MeterName = "VllmStack.EngineSim";

    private static readonly double[] TtftBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
    private static readonly double[] ItlBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
    private static readonly double[] RequestLatencyBuckets = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];

    private readonly Meter _meter;
    private readonly KeyValuePair<string, object?> _model;
    private readonly KeyValuePair<string, object?> _engine = new("engine", "0");
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _generationTokens;
    private readonly Counter<long> _prefixQueries;
    private readonly Counter<long> _prefixHits;
    private readonly Counter<long> _preemptions;
    private readonly Counter<long> _externalQueries;
    private readonly Counter<long> _externalHits;
    private readonly Counter<long> _requestSuccess;
    private readonly Histogram<double> _ttft;
    private readonly Histogram<double> _itl;
    private readonly Histogram<double> _e2e;
    private readonly Histogram<double> _queue;
    private readonly Histogram<double> _prefill;
    private readonly Histogram<double> _decode;
    private readonly Histogram<double> _inference;
    private readonly Histogram<long> _requestPromptTokens;
    private readonly Histogram<long> _requestGenerationTokens;

    public EngineMetrics(EngineOptions options)
    {
        _meter = new Meter(MeterName);
        _model = new("model_name", options.PrimaryModelName);
        var tokenBuckets = OneTwoFiveBuckets(options.MaxModelLen);

        _promptTokens = _meter.CreateCounter<long>("vllm:prompt_tokens", null, "Number of prefill tokens processed.");
        _generationTokens = _meter.CreateCounter<long>("vllm:generation_tokens", null, "Number of generation tokens processed.");
        var v0 = options.MetricNames == MetricNames.V0;
        _prefixQueries = _meter.CreateCounter<long>(v0 ? "vllm:gpu_prefix_cache_queries" : "vllm:prefix_cache_queries", null, "Prefix cache queries, in terms of number of queried tokens.");
        _prefixHits = _meter.CreateCounter<long>(v0 ? "vllm:gpu_prefix_cache_hits" : "vllm:prefix_cache_hits", null, "Prefix cache hits, in terms of number of cached tokens.");
        _preemptions = _meter.CreateCounter<long>("vllm:num_preemptions", null, "Cumulative number of preemptions from the engine.");
        _externalQueries = _meter.CreateCounter<long>("vllm:external_prefix_cache_queries", null, "Tokens asked of the shared KV pool (beyond the local cache).");
        _externalHits = _meter.CreateCounter<long>("vllm:external_prefix_cache_hits", null, "Tokens fetched from the shared KV pool instead of computed.");
        _requestSuccess = _meter.CreateCounter<long>("vllm:request_success", null, "Count of successfully processed requests.");

        _ttft = Seconds("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TtftBuckets);
        _itl = Seconds("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", ItlBuckets);
        _e2e = Seconds("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", RequestLatencyBuckets);
        _queue = Seconds("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", RequestLatencyBuckets);
        _prefill = Seconds("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", RequestLatencyBuckets);
        _decode = Seconds("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", RequestLatencyBuckets);
        _inference = Seconds("vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.", RequestLatencyBuckets);
        _requestPromptTokens = _meter.CreateHistogram<long>("vllm:request_prompt_tokens", null, "Number of prefill tokens processed.",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = tokenBuckets });
        _requestGenerationTokens = _meter.CreateHistogram<long>("vllm:request_generation_tokens", null, "Number of generation tokens processed.",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = tokenBuckets });

        // Series exist from the start, as in vLLM, so that a scraper sees every counter before the first request.
        _promptTokens.Add(0, _model, _engine);
        _generationTokens.Add(0, _model, _engine);
        _prefixQueries.Add(0, _model, _engine);
        _prefixHits.Add(0, _model, _engine);
        _preemptions.Add(0, _model, _engine);
        _externalQueries.Add(0, _model, _engine);
        _externalHits.Add(0, _model, _engine);
        foreach (var reason in FinishReasons.All)
        {
            _requestSuccess.Add(0, _model, _engine, new("finished_reason", reason));
        }
    }

    /// <summary>Gauges read from the scheduler at scrape time.</summary>
    public void Observe(Scheduler scheduler, EngineOptions options, Func<int> maxLoras)
    {
        _meter.CreateObservableGauge("vllm:num_requests_running", () => new Measurement<long>(scheduler.Snapshot().Running, _model, _engine),
            null, "Number of requests in model execution batches.");
        _meter.CreateObservableGauge("vllm:num_requests_waiting", () => new Measurement<long>(scheduler.Snapshot().Waiting, _model, _engine),
            null, "Number of requests waiting to be processed.");
        _meter.CreateObservableGauge(options.MetricNames == MetricNames.V0 ? "vllm:gpu_cache_usage_perc" : "vllm:kv_cache_usage_perc", () => new Measurement<double>(scheduler.Snapshot().KvCacheUsage, _model, _engine),
            null, "KV-cache usage. 1 means 100 percent usage.");
        var cacheConfig = new TagList
        {
            { "block_size", options.BlockSize.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            { "cache_dtype", "auto" },
            { "enable_prefix_caching", options.EnablePrefixCaching ? "True" : "False" },
            { "engine", "0" },
            { "gpu_memory_utilization", "0.9" },
            { "num_gpu_blocks", options.NumGpuBlocks.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        };
        _meter.CreateObservableGauge("vllm:cache_config_info", () => new Measurement<long>(1, cacheConfig), null, "Information of the LLMEngine CacheConfig");
        _meter.CreateObservableGauge("vllm:lora_requests_info", () =>
        {
            var snapshot = scheduler.Snapshot();
            return new Measurement<double>(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0,
                new KeyValuePair<string, object?>("max_lora", maxLoras().ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new KeyValuePair<string, object?>("running_lora_adapters", string.Join(',', snapshot.RunningLoras)),
                new KeyValuePair<string, object?>("waiting_lora_adapters", string.Join(',', snapshot.WaitingLoras)));
        }, null, "Running stats on lora requests.");
    }

    public void PrefixCacheQueried(int queriedTokens, int hitTokens)
    {
        _prefixQueries.Add(queriedTokens, _model, _engine);
        _prefixHits.Add(hitTokens, _model, _engine);
    }

    public void Preempted() => _preemptions.Add(1, _model, _engine);

    public void ExternalPrefixCacheQueried(int queriedTokens, int hitTokens)
    {
        _externalQueries.Add(queriedTokens, _model, _engine);
        _externalHits.Add(hitTokens, _model, _engine);
    }

    public void FirstToken(double seconds) => _ttft.Record(seconds, _model, _engine);

    public void InterToken(double seconds) => _itl.Record(seconds, _model, _engine);

    public void TokenGenerated() => _generationTokens.Add(1, _model, _engine);

    /// <summary>A sequence ended: its timings split the way vLLM splits them (queue, prefill, decode).</summary>
    public void Finished(Sequence seq, string finishReason, long firstTokenTimestamp, long lastTokenTimestamp)
    {
        var now = Stopwatch.GetTimestamp();
        _requestSuccess.Add(1, _model, _engine, new("finished_reason", finishReason));
        _e2e.Record(Stopwatch.GetElapsedTime(seq.ArrivalTimestamp, now).TotalSeconds, _model, _engine);
        _promptTokens.Add(seq.PromptLength, _model, _engine);
        _requestPromptTokens.Record(seq.PromptLength, _model, _engine);
        _requestGenerationTokens.Record(seq.OutputLength, _model, _engine);
        if (seq.FirstScheduledTimestamp != 0)
        {
            _queue.Record(Stopwatch.GetElapsedTime(seq.ArrivalTimestamp, seq.FirstScheduledTimestamp).TotalSeconds, _model, _engine);
            _inference.Record(Stopwatch.GetElapsedTime(seq.FirstScheduledTimestamp, lastTokenTimestamp == 0 ? now : lastTokenTimestamp).TotalSeconds, _model, _engine);
            if (firstTokenTimestamp != 0)
            {
                _prefill.Record(Stopwatch.GetElapsedTime(seq.FirstScheduledTimestamp, firstTokenTimestamp).TotalSeconds, _model, _engine);
                _decode.Record(Stopwatch.GetElapsedTime(firstTokenTimestamp, lastTokenTimestamp).TotalSeconds, _model, _engine);
            }
        }
    }

    /// <summary>A prompt processed without generation (embeddings).</summary>
    public void PromptProcessed(int tokens, double seconds)
    {
        _promptTokens.Add(tokens, _model, _engine);
        _requestPromptTokens.Record(tokens, _model, _engine);
        _e2e.Record(seconds, _model, _engine);
        _requestSuccess.Add(1, _model, _engine, new("finished_reason", FinishReasons.Stop));
    }

    private Histogram<double> Seconds(string name, string help, double[] buckets) =>
        _meter.CreateHistogram<double>(name, "s", help, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = buckets });

    /// <summary>1, 2, 5, 10, 20, 50, … up to the limit, as vLLM buckets token counts.</summary>
    internal static long[] OneTwoFiveBuckets(int max)
    {
        var buckets = new List<long>();
        for (long exponent = 1; ; exponent *= 10)
        {
            foreach (var mantissa in new long[] { 1, 2, 5 })
            {
                var value = mantissa * exponent;
                if (value > max)
                {
                    return [.. buckets];
                }
                buckets.Add(value);
            }
        }
    }

    public void Dispose() => _meter.Dispose();
}

public static class FinishReasons
{
    public const string Stop = "stop";
    public const string Length = "length";
    public const string Abort = "abort";
    public static readonly string[] All = [Stop, Length, Abort];
}
