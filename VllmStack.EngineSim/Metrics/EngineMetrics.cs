using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;

namespace VllmStack.EngineSim.Metrics;

/// <summary>
/// vLLM 0.11's engine metrics (<c>vllm/v1/metrics/loggers.py</c>, <c>PrometheusStatLogger</c>), under vLLM's names,
/// types, help texts, labels (<c>model_name</c>, <c>engine</c>) and buckets, all fed by the engine model. Counters are
/// named without <c>_total</c>: the Prometheus exposition adds it, as vLLM's does. With
/// <c>--show-hidden-metrics-for-version 0.10</c> the names 0.11 hides are exposed again beside their replacements.
/// </summary>
public sealed class EngineMetrics : IDisposable
{
    public const string MeterName = "VllmStack.EngineSim";

    private static readonly double[] TtftBuckets = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
    private static readonly double[] ItlBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
    private static readonly double[] RequestLatencyBuckets = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];
    private static readonly long[] IterationTokenBuckets = [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];
    private static readonly long[] ParamsNBuckets = [1, 2, 5, 10, 20];

    private readonly Meter _meter;
    private readonly KeyValuePair<string, object?> _model;
    private readonly KeyValuePair<string, object?> _engine = new("engine", "0");
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _generationTokens;
    private readonly Counter<long> _prefixQueries;
    private readonly Counter<long> _prefixHits;
    private readonly Counter<long>? _hiddenPrefixQueries;
    private readonly Counter<long>? _hiddenPrefixHits;
    private readonly Counter<long> _preemptions;
    private readonly Counter<long> _externalQueries;
    private readonly Counter<long> _externalHits;
    private readonly Counter<long> _requestSuccess;
    private readonly Histogram<double> _ttft;
    private readonly Histogram<double> _itl;
    private readonly Histogram<double> _timePerOutputToken;
    private readonly Histogram<double> _e2e;
    private readonly Histogram<double> _queue;
    private readonly Histogram<double> _prefill;
    private readonly Histogram<double> _decode;
    private readonly Histogram<double> _inference;
    private readonly Histogram<long> _requestPromptTokens;
    private readonly Histogram<long> _requestGenerationTokens;
    private readonly Histogram<long> _iterationTokens;
    private readonly Histogram<long> _maxNumGenerationTokens;
    private readonly Histogram<long> _paramsN;
    private readonly Histogram<long> _paramsMaxTokens;
    private readonly Gauge<double>? _loraRequests;
    private readonly KeyValuePair<string, object?> _maxLora;
    private readonly bool _showHidden;

    public EngineMetrics(EngineOptions options)
    {
        _meter = new Meter(MeterName);
        _model = new("model_name", options.PrimaryModelName);
        _showHidden = options.ShowHiddenMetrics;
        var tokenBuckets = OneTwoFiveBuckets(options.MaxModelLen);

        _promptTokens = _meter.CreateCounter<long>("vllm:prompt_tokens", null, "Number of prefill tokens processed.");
        _generationTokens = _meter.CreateCounter<long>("vllm:generation_tokens", null, "Number of generation tokens processed.");
        _prefixQueries = _meter.CreateCounter<long>("vllm:prefix_cache_queries", null, "Prefix cache queries, in terms of number of queried tokens.");
        _prefixHits = _meter.CreateCounter<long>("vllm:prefix_cache_hits", null, "Prefix cache hits, in terms of number of cached tokens.");
        if (_showHidden)
        {
            // Deprecated in 0.9.2, hidden in 0.11 unless shown again; the help texts are vLLM's, missing spaces included.
            _hiddenPrefixQueries = _meter.CreateCounter<long>("vllm:gpu_prefix_cache_queries", null,
                "GPU prefix cache queries, in terms of number of queriedtokens. DEPRECATED: Use vllm:prefix_cache_queries instead.");
            _hiddenPrefixHits = _meter.CreateCounter<long>("vllm:gpu_prefix_cache_hits", null,
                "GPU prefix cache hits, in terms of number of cached tokens. DEPRECATED: Use vllm:prefix_cache_hits instead.");
        }
        _preemptions = _meter.CreateCounter<long>("vllm:num_preemptions", null, "Cumulative number of preemption from the engine.");
        _externalQueries = _meter.CreateCounter<long>("vllm:external_prefix_cache_queries", null, "Tokens asked of the shared KV pool (beyond the local cache).");
        _externalHits = _meter.CreateCounter<long>("vllm:external_prefix_cache_hits", null, "Tokens fetched from the shared KV pool instead of computed.");
        _requestSuccess = _meter.CreateCounter<long>("vllm:request_success", null, "Count of successfully processed requests.");

        _ttft = Seconds("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", TtftBuckets);
        _itl = Seconds("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", ItlBuckets);
        // Deprecated in 0.11 but still shown there, fed with the same observations as the inter-token latency.
        _timePerOutputToken = Seconds("vllm:time_per_output_token_seconds",
            "Histogram of time per output token in seconds.DEPRECATED: Use vllm:inter_token_latency_seconds instead.", ItlBuckets);
        _e2e = Seconds("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", RequestLatencyBuckets);
        _queue = Seconds("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", RequestLatencyBuckets);
        _prefill = Seconds("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", RequestLatencyBuckets);
        _decode = Seconds("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", RequestLatencyBuckets);
        _inference = Seconds("vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.", RequestLatencyBuckets);
        _requestPromptTokens = Tokens("vllm:request_prompt_tokens", "Number of prefill tokens processed.", tokenBuckets);
        _requestGenerationTokens = Tokens("vllm:request_generation_tokens", "Number of generation tokens processed.", tokenBuckets);
        _iterationTokens = Tokens("vllm:iteration_tokens_total", "Histogram of number of tokens per engine_step.", IterationTokenBuckets);
        _maxNumGenerationTokens = Tokens("vllm:request_max_num_generation_tokens", "Histogram of maximum number of requested generation tokens.", tokenBuckets);
        _paramsN = Tokens("vllm:request_params_n", "Histogram of the n request parameter.", ParamsNBuckets);
        _paramsMaxTokens = Tokens("vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", tokenBuckets);

        _maxLora = new("max_lora", options.MaxLoras.ToString(CultureInfo.InvariantCulture));
        if (options.EnableLora)
        {
            // vLLM creates it only with a LoRA config; each engine step sets the current label combination to the
            // time, and combinations of earlier steps stay behind with their last time.
            _loraRequests = _meter.CreateGauge<double>("vllm:lora_requests_info", null, "Running stats on lora requests.");
        }

        // Series exist from the start, as in vLLM, so that a scraper sees every counter before the first request.
        _promptTokens.Add(0, _model, _engine);
        _generationTokens.Add(0, _model, _engine);
        _prefixQueries.Add(0, _model, _engine);
        _prefixHits.Add(0, _model, _engine);
        _hiddenPrefixQueries?.Add(0, _model, _engine);
        _hiddenPrefixHits?.Add(0, _model, _engine);
        _preemptions.Add(0, _model, _engine);
        _externalQueries.Add(0, _model, _engine);
        _externalHits.Add(0, _model, _engine);
        foreach (var reason in FinishReasons.All)
        {
            _requestSuccess.Add(0, _model, _engine, new("finished_reason", reason));
        }
    }

    /// <summary>Whether <c>vllm:lora_requests_info</c> exists (<c>--enable-lora</c>), so that the scheduler tracks adapters for it.</summary>
    public bool TracksLoraRequests => _loraRequests is not null;

    /// <summary>Gauges read from the scheduler at scrape time, and <c>vllm:cache_config_info</c>.</summary>
    public void Observe(Scheduler scheduler, EngineOptions options)
    {
        _meter.CreateObservableGauge("vllm:num_requests_running", () => new Measurement<long>(scheduler.Snapshot().Running, _model, _engine),
            null, "Number of requests in model execution batches.");
        _meter.CreateObservableGauge("vllm:num_requests_waiting", () => new Measurement<long>(scheduler.Snapshot().Waiting, _model, _engine),
            null, "Number of requests waiting to be processed.");
        _meter.CreateObservableGauge("vllm:kv_cache_usage_perc", () => new Measurement<double>(scheduler.Snapshot().KvCacheUsage, _model, _engine),
            null, "KV-cache usage. 1 means 100 percent usage.");
        if (_showHidden)
        {
            _meter.CreateObservableGauge("vllm:gpu_cache_usage_perc", () => new Measurement<double>(scheduler.Snapshot().KvCacheUsage, _model, _engine),
                null, "GPU KV-cache usage. 1 means 100 percent usage.DEPRECATED: Use vllm:kv_cache_usage_perc instead.");
        }
        var cacheConfig = CacheConfigInfo.Labels(options);
        _meter.CreateObservableGauge("vllm:cache_config_info", () => new Measurement<long>(1, cacheConfig), null, "Information of the LLMEngine CacheConfig");
    }

    public void PrefixCacheQueried(int queriedTokens, int hitTokens)
    {
        _prefixQueries.Add(queriedTokens, _model, _engine);
        _prefixHits.Add(hitTokens, _model, _engine);
        _hiddenPrefixQueries?.Add(queriedTokens, _model, _engine);
        _hiddenPrefixHits?.Add(hitTokens, _model, _engine);
    }

    public void Preempted() => _preemptions.Add(1, _model, _engine);

    public void ExternalPrefixCacheQueried(int queriedTokens, int hitTokens)
    {
        _externalQueries.Add(queriedTokens, _model, _engine);
        _externalHits.Add(hitTokens, _model, _engine);
    }

    /// <summary>A sequence's first token: its time to first token, and its prompt counted as processed (vLLM counts prompt tokens then).</summary>
    public void FirstToken(double seconds, int promptTokens)
    {
        _ttft.Record(seconds, _model, _engine);
        _promptTokens.Add(promptTokens, _model, _engine);
    }

    public void InterToken(double seconds)
    {
        _itl.Record(seconds, _model, _engine);
        _timePerOutputToken.Record(seconds, _model, _engine);
    }

    /// <summary>One engine step ended: <c>vllm:iteration_tokens_total</c> observes its prompt plus generated tokens.</summary>
    public void EngineStep(int tokens) => _iterationTokens.Record(tokens, _model, _engine);

    /// <summary>
    /// Sets <c>vllm:lora_requests_info</c> for this label combination to the current Unix time in seconds, as vLLM's
    /// <c>set_to_current_time()</c> does at each step; the adapter lists are comma-separated, in vLLM's order.
    /// </summary>
    public void LoraRequests(string runningAdapters, string waitingAdapters) =>
        _loraRequests?.Record((DateTime.UtcNow - DateTime.UnixEpoch).TotalSeconds,
            _maxLora, new("running_lora_adapters", runningAdapters), new("waiting_lora_adapters", waitingAdapters));

    public void TokenGenerated() => _generationTokens.Add(1, _model, _engine);

    /// <summary>
    /// A sequence ended: its timings split the way vLLM splits them (queue, prefill, decode), its <c>max_tokens</c>; and,
    /// once every sequence of its request has ended, the request's <c>n</c> and longest output (vLLM's ParentRequest).
    /// </summary>
    public void Finished(Sequence seq, string finishReason, long firstTokenTimestamp, long lastTokenTimestamp, int maxTokens)
    {
        var now = Stopwatch.GetTimestamp();
        _requestSuccess.Add(1, _model, _engine, new("finished_reason", finishReason));
        _e2e.Record(Stopwatch.GetElapsedTime(seq.ArrivalTimestamp, now).TotalSeconds, _model, _engine);
        _requestPromptTokens.Record(seq.PromptLength, _model, _engine);
        _requestGenerationTokens.Record(seq.OutputLength, _model, _engine);
        _paramsMaxTokens.Record(maxTokens, _model, _engine);
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
        if (seq.Parent is null)
        {
            RequestFinished(1, seq.OutputLength);
        }
        else if (seq.Parent.SequenceFinished(seq.OutputLength) is { } longest)
        {
            RequestFinished(seq.Parent.N, longest);
        }
    }

    /// <summary>A prompt processed without generation (embeddings).</summary>
    public void PromptProcessed(int tokens, double seconds)
    {
        _promptTokens.Add(tokens, _model, _engine);
        // A pooling request is a step of its own here; vLLM records it as a request with n = 1 and no output.
        EngineStep(tokens);
        _requestPromptTokens.Record(tokens, _model, _engine);
        _e2e.Record(seconds, _model, _engine);
        _requestSuccess.Add(1, _model, _engine, new("finished_reason", FinishReasons.Stop));
        RequestFinished(1, 0);
    }

    private void RequestFinished(int n, int longestOutput)
    {
        _paramsN.Record(n, _model, _engine);
        _maxNumGenerationTokens.Record(longestOutput, _model, _engine);
    }

    private Histogram<double> Seconds(string name, string help, double[] buckets) =>
        _meter.CreateHistogram<double>(name, "s", help, advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = buckets });

    private Histogram<long> Tokens(string name, string help, long[] buckets) =>
        _meter.CreateHistogram<long>(name, null, help, advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = buckets });

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
