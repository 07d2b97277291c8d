namespace VllmStack.EngineSim.Configuration;

public enum OutputMode
{
    /// <summary>Plausible English words, deterministic for a given seed and prompt.</summary>
    Random,

    /// <summary>The prompt's text (the last user message for chat) repeated back.</summary>
    Echo,
}

public sealed record LoraModule(string Name, string Path, string? BaseModelName);

/// <summary>Everything the simulator is told on its command line, validated before it starts serving.</summary>
public sealed class EngineOptions
{
    public required string Model { get; init; }

    public IReadOnlyList<string> ServedModelNames { get; init; } = [];

    public string Host { get; init; } = "127.0.0.1";

    public int Port { get; init; } = 8000;

    public int MaxModelLen { get; init; } = 32768;

    public int MaxNumSeqs { get; init; } = 256;

    public int BlockSize { get; init; } = 16;

    public int NumGpuBlocks { get; init; } = 8192;

    /// <summary>Whether the block count was given on the command line (vLLM's <c>num_gpu_blocks_override</c>) rather than left to the default.</summary>
    public bool NumGpuBlocksOverridden { get; init; }

    /// <summary>vLLM's <c>--gpu-memory-utilization</c>, a share in (0, 1]; the simulator reports it in <c>vllm:cache_config_info</c>.</summary>
    public double GpuMemoryUtilization { get; init; } = 0.9;

    /// <summary>vLLM's <c>--kv-cache-dtype</c> (<c>auto</c>: the model's); reported in <c>vllm:cache_config_info</c>.</summary>
    public string KvCacheDtype { get; init; } = "auto";

    /// <summary>vLLM's <c>--swap-space</c> in GiB; reported in <c>vllm:cache_config_info</c> (0.11's <c>vllm serve</c> shows 0.0 by default).</summary>
    public double SwapSpaceGiB { get; init; }

    public bool EnablePrefixCaching { get; init; } = true;

    public bool EnableLora { get; init; }

    public int MaxLoras { get; init; } = 1;

    public IReadOnlyList<LoraModule> LoraModules { get; init; } = [];

    public string? ApiKey { get; init; }

    public int Seed { get; init; }

    public LatencyProfile Latency { get; init; } = LatencyProfile.H100Llama8B;

    public string LatencyPresetName { get; init; } = "h100-8b";

    public OutputMode Output { get; init; } = OutputMode.Random;

    public int EmbeddingDimensions { get; init; } = 1024;

    /// <summary>
    /// vLLM's <c>--show-hidden-metrics-for-version</c>: the release whose deprecated metrics, hidden since, are shown again.
    /// </summary>
    public string? ShowHiddenMetricsForVersion { get; init; }

    /// <summary>
    /// Whether the hidden metrics are shown: as vLLM's <c>_prev_minor_version_was</c>, only when the flag names the minor
    /// release before <see cref="Version"/> exactly (<c>0.10</c> for 0.11.0); any other value shows nothing more.
    /// </summary>
    public bool ShowHiddenMetrics =>
        ShowHiddenMetricsForVersion is { } shown && Version.Split('.') is [var major, var minor, ..]
        && int.TryParse(minor, System.Globalization.CultureInfo.InvariantCulture, out var m)
        && shown == $"{major}.{m - 1}";

    /// <summary>The cache server that receives this engine's KV block events (the KV-cache network); none: not in it.</summary>
    public Uri? KvCacheServer { get; init; }

    /// <summary>This engine's id in the cache server's index; default: the URL it listens on (what routers know it by).</summary>
    public string? KvEngineId { get; init; }

    public int KvEventsIntervalMs { get; init; } = 100;

    /// <summary>Write evicted blocks to the cache server's pool, and fetch from it on a local miss.</summary>
    public bool KvOffload { get; init; }

    /// <summary>
    /// With <see cref="KvOffload"/>: also write each full block to the pool as soon as it is computed (prompt blocks after
    /// prefill, output blocks as decode fills them), as LMCache's store-on-compute does, so that another engine can
    /// fetch a prefix this one computed even if this one dies (a migrated stream's continuation).
    /// </summary>
    public bool KvStoreOnCompute { get; init; }

    /// <summary>KV bytes per token: 2 × layers × kv heads × head dim × dtype bytes (Llama-3-8B in bf16: 128 KiB).</summary>
    public long KvBytesPerToken { get; init; } = 131072;

    /// <summary>Share of those bytes actually moved (the transfer time is charged for all of them).</summary>
    public double KvScale { get; init; } = 1.0 / 1024;

    /// <summary>Bandwidth between the pool and the GPU, in GB/s (100 Gb/s network: 12.5).</summary>
    public double KvTransferGBps { get; init; } = 12.5;

    /// <summary>The base model the engine's KV belongs to (pool keys and block chains use it).</summary>
    public string PrimaryBaseModel => PrimaryModelName;

    /// <summary>Report <c>usage.prompt_tokens_details.cached_tokens</c> (vLLM: --enable-prompt-tokens-details).</summary>
    public bool EnablePromptTokensDetails { get; init; }

    public double FailureRate { get; init; }

    public IReadOnlyList<FailureType> FailureTypes { get; init; } = [];

    /// <summary>vLLM's <c>--response-role</c>: the role of generated chat messages when a generation prompt is added.</summary>
    public string ResponseRole { get; init; } = "assistant";

    /// <summary>vLLM's <c>--scheduling-policy</c>: first come first served, or by each request's <c>priority</c>.</summary>
    public SchedulingPolicy SchedulingPolicy { get; init; } = SchedulingPolicy.Fcfs;

    /// <summary>vLLM's <c>--enable-auto-tool-choice</c> with a <c>--tool-call-parser</c>: needed for <c>tool_choice: "auto"</c>.</summary>
    public bool EnableAutoToolChoice { get; init; }

    public string? ToolCallParser { get; init; }

    /// <summary>vLLM's <c>--enable-force-include-usage</c>: every stream ends with a usage chunk.</summary>
    public bool EnableForceIncludeUsage { get; init; }

    /// <summary>vLLM's <c>--enable-request-id-headers</c>: every response carries <c>X-Request-Id</c>.</summary>
    public bool EnableRequestIdHeaders { get; init; }

    /// <summary>vLLM's <c>--max-logprobs</c>: the most <c>logprobs</c> / <c>top_logprobs</c> / <c>prompt_logprobs</c> a request may ask for.</summary>
    public int MaxLogprobs { get; init; } = 20;

    /// <summary>vLLM flags accepted for compatibility that change nothing in a simulation, as given (logged at start).</summary>
    public IReadOnlyList<string> IgnoredFlags { get; init; } = [];

    /// <summary>Highest adapter rank (<c>r</c> in <c>adapter_config.json</c>) a load accepts (vLLM <c>--max-lora-rank</c>, default 16).</summary>
    public int MaxLoraRank { get; init; } = 16;

    /// <summary>
    /// A local folder standing for the Hugging Face hub: a LoRA path that is a repository id (<c>org/name</c>) and no
    /// local path resolves to <c>DIR/org/name</c>, which must hold the adapter. None: every repository id resolves.
    /// </summary>
    public string? LoraHubDirectory { get; init; }

    /// <summary>Newer vLLM's LoRA loading: <c>load_inplace</c> reloads a loaded adapter, other failures are 500s.</summary>
    public bool LoraLoadInplace { get; init; }

    /// <summary>
    /// Seconds one adapter load takes (a runtime load and each <c>--lora-modules</c> entry at start): vLLM's worker reads
    /// the adapter's weights on its engine-core thread, so no engine step runs meanwhile. Default 0.5; 0 loads at once.
    /// </summary>
    public double LoraLoadSeconds { get; init; } = 0.5;

    /// <summary>vLLM <c>--enable-sleep-mode</c>: sleep really frees GPU memory, so a forward pass while asleep kills the engine core.</summary>
    public bool EnableSleepMode { get; init; }

    /// <summary>vLLM <c>--enable-server-load-tracking</c>: <c>/load</c> counts the requests in flight on the generation routes.</summary>
    public bool EnableServerLoadTracking { get; init; }

    /// <summary>Seconds the simulated model load takes; nothing listens meanwhile, as with vLLM.</summary>
    public double StartupDelaySeconds { get; init; }

    /// <summary>Fault: the engine core dies when request N + 1 reaches it (none: never).</summary>
    public int? FaultEngineDeadAfterRequests { get; init; }

    /// <summary><c>VLLM_SERVER_DEV_MODE</c>: the sleep-mode and prefix-cache routes exist.</summary>
    public bool ServerDevMode { get; init; }

    /// <summary><c>VLLM_ALLOW_RUNTIME_LORA_UPDATING</c>: the LoRA load and unload routes exist.</summary>
    public bool AllowRuntimeLoraUpdating { get; init; }

    /// <summary><c>VLLM_KEEP_ALIVE_ON_ENGINE_DEATH</c>: the server stays up after its engine core died.</summary>
    public bool KeepAliveOnEngineDeath { get; init; }

    /// <summary><c>VLLM_HTTP_TIMEOUT_KEEP_ALIVE</c>: seconds an idle keep-alive connection stays open (uvicorn's default, 5).</summary>
    public int HttpTimeoutKeepAliveSeconds { get; init; } = 5;

    /// <summary>What <c>/version</c> reports; the vLLM release whose API the simulator follows.</summary>
    public string Version { get; init; } = "0.11.0";

    /// <summary>The name metrics and responses use for the model: the first served name, else the model path.</summary>
    public string PrimaryModelName => ServedModelNames.Count > 0 ? ServedModelNames[0] : Model;

    public IReadOnlyList<string> ModelNames => ServedModelNames.Count > 0 ? ServedModelNames : [Model];

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Model))
        {
            yield return "a model is required (positional MODEL or --model)";
        }
        if (Port is < 0 or > 65535)
        {
            yield return $"--port {Port} is not a TCP port";
        }
        if (MaxModelLen < 1)
        {
            yield return "--max-model-len must be at least 1";
        }
        if (MaxNumSeqs < 1)
        {
            yield return "--max-num-seqs must be at least 1";
        }
        if (BlockSize is < 1 or > 1024)
        {
            yield return "--block-size must be between 1 and 1024";
        }
        if (NumGpuBlocks < 1)
        {
            yield return "--num-gpu-blocks must be at least 1";
        }
        else if ((long)NumGpuBlocks * BlockSize < MaxModelLen)
        {
            yield return $"the KV cache ({NumGpuBlocks} blocks × {BlockSize} tokens = {(long)NumGpuBlocks * BlockSize} tokens) cannot hold one sequence of --max-model-len {MaxModelLen}; raise --num-gpu-blocks or lower --max-model-len";
        }
        if (GpuMemoryUtilization is <= 0 or > 1)
        {
            yield return $"--gpu-memory-utilization must be in (0, 1], got {GpuMemoryUtilization}";
        }
        if (SwapSpaceGiB < 0)
        {
            yield return "--swap-space must be ≥ 0";
        }
        if (MaxLoras < 1)
        {
            yield return "--max-loras must be at least 1";
        }
        if (LoraModules.Count > 0 && !EnableLora)
        {
            yield return "--lora-modules needs --enable-lora";
        }
        if (FailureRate is < 0 or > 1)
        {
            yield return "--failure-rate must be between 0 and 1";
        }
        if (FailureRate > 0 && FailureTypes.Count == 0)
        {
            yield return "--failure-rate needs at least one --failure-types entry";
        }
        if (KvOffload && KvCacheServer is null)
        {
            yield return "--kv-offload needs --kv-cache-server";
        }
        if (KvStoreOnCompute && !KvOffload)
        {
            yield return "--kv-store-on-compute needs --kv-offload";
        }
        if (KvBytesPerToken < 1 || KvScale is <= 0 or > 1 || KvTransferGBps <= 0)
        {
            yield return "--kv-bytes-per-token must be ≥ 1, --kv-scale in (0, 1] and --kv-transfer-gbps > 0";
        }
        if (EnableAutoToolChoice && string.IsNullOrEmpty(ToolCallParser))
        {
            // vLLM refuses to start the same way: auto tool choice needs a parser for the model's tool-call format.
            yield return "--enable-auto-tool-choice requires --tool-call-parser";
        }
        if (MaxLogprobs < 0)
        {
            yield return "--max-logprobs must be at least 0";
        }
        if (MaxLoraRank < 1)
        {
            yield return "--max-lora-rank must be at least 1";
        }
        if (LoraLoadSeconds is < 0 or > 3600 || double.IsNaN(LoraLoadSeconds))
        {
            yield return "--lora-load-seconds must be between 0 and 3600";
        }
        if (StartupDelaySeconds < 0 || FaultEngineDeadAfterRequests < 0 || HttpTimeoutKeepAliveSeconds < 0)
        {
            yield return $"--startup-delay-seconds, --fault-engine-dead-after-requests and {VllmEnvironment.HttpTimeoutKeepAlive} must not be negative";
        }
        if (EmbeddingDimensions < 1)
        {
            yield return "--embedding-dim must be at least 1";
        }
        var l = Latency;
        if (l.PrefillOverheadMs < 0 || l.PrefillTimePerTokenMs < 0 || l.InterTokenLatencyMs < 0 || l.TimeFactorUnderLoad < 1 || l.Jitter is < 0 or > 1)
        {
            yield return "latency settings must be ≥ 0, --time-factor-under-load ≥ 1 and --latency-jitter between 0 and 1";
        }
    }
}

/// <summary>vLLM's <c>--scheduling-policy</c>.</summary>
public enum SchedulingPolicy
{
    /// <summary>First come, first served (vLLM's default).</summary>
    Fcfs,

    /// <summary>By the request's <c>priority</c> (lower first), then by arrival; the lowest priority is preempted first.</summary>
    Priority,
}

/// <summary>Failures the simulator can inject, named as llm-d's simulator names them.</summary>
public enum FailureType
{
    RateLimit,
    InvalidApiKey,
    ContextLength,
    ServerError,
    InvalidRequest,
    ModelNotFound,
    ServiceUnavailable,
}
