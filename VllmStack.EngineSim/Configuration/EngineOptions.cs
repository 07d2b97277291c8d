namespace VllmStack.EngineSim.Configuration;

public enum OutputMode
{
    /// <summary>Plausible English words, deterministic for a given seed and prompt.</summary>
    Random,

    /// <summary>The prompt's text (the last user message for chat) repeated back.</summary>
    Echo,
}

/// <summary>Which vLLM generation's metric names to expose.</summary>
public enum MetricNames
{
    /// <summary>vLLM V1: <c>kv_cache_usage_perc</c>, <c>prefix_cache_queries/hits</c>.</summary>
    V1,

    /// <summary>Older releases: <c>gpu_cache_usage_perc</c>, <c>gpu_prefix_cache_queries/hits</c> (for testing scrapers).</summary>
    V0,
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

    public MetricNames MetricNames { get; init; } = MetricNames.V1;

    /// <summary>The cache server that receives this engine's KV block events (the KV-cache network); none: not in it.</summary>
    public Uri? KvCacheServer { get; init; }

    /// <summary>This engine's id in the cache server's index; default: the URL it listens on (what routers know it by).</summary>
    public string? KvEngineId { get; init; }

    public int KvEventsIntervalMs { get; init; } = 100;

    /// <summary>Write evicted blocks to the cache server's pool, and fetch from it on a local miss.</summary>
    public bool KvOffload { get; init; }

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

    /// <summary>Highest adapter rank (<c>r</c> in <c>adapter_config.json</c>) a load accepts (vLLM <c>--max-lora-rank</c>, default 16).</summary>
    public int MaxLoraRank { get; init; } = 16;

    /// <summary>
    /// A local folder standing for the Hugging Face hub: a LoRA path that is a repository id (<c>org/name</c>) and no
    /// local path resolves to <c>DIR/org/name</c>, which must hold the adapter. None: every repository id resolves.
    /// </summary>
    public string? LoraHubDirectory { get; init; }

    /// <summary>Newer vLLM's LoRA loading: <c>load_inplace</c> reloads a loaded adapter, other failures are 500s.</summary>
    public bool LoraLoadInplace { get; init; }

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
        if (KvBytesPerToken < 1 || KvScale is <= 0 or > 1 || KvTransferGBps <= 0)
        {
            yield return "--kv-bytes-per-token must be ≥ 1, --kv-scale in (0, 1] and --kv-transfer-gbps > 0";
        }
        if (MaxLoraRank < 1)
        {
            yield return "--max-lora-rank must be at least 1";
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
