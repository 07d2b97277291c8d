using System.CommandLine;
using System.Text.Json;

namespace VllmStack.EngineSim.Configuration;

/// <summary>
/// <c>vllm serve</c>'s command line, so that anything that starts vLLM can start the simulator with the same
/// arguments; plus the simulator's own flags (latency model, output mode, fault injection).
/// </summary>
public static class EngineCommandLine
{
    private static readonly Argument<string?> ModelArgument = new("model") { Arity = ArgumentArity.ZeroOrOne, Description = "Model name or path (as for vllm serve)." };
    private static readonly Option<string?> Model = new("--model") { Description = "Model name or path (instead of the positional MODEL)." };
    private static readonly Option<string[]> ServedModelName = new("--served-model-name") { AllowMultipleArgumentsPerToken = true, Description = "Names the API serves the model under (the first is used in metrics)." };
    private static readonly Option<string> Host = new("--host") { DefaultValueFactory = _ => "127.0.0.1", Description = "Address to listen on." };
    private static readonly Option<int> Port = new("--port") { DefaultValueFactory = _ => 8000, Description = "Port to listen on (0: any free port, printed at start)." };
    private static readonly Option<int> MaxModelLen = new("--max-model-len") { DefaultValueFactory = _ => 32768, Description = "Context length: prompt plus output tokens." };
    private static readonly Option<int> MaxNumSeqs = new("--max-num-seqs") { DefaultValueFactory = _ => 256, Description = "Sequences in one batch; the rest wait." };
    private static readonly Option<int> BlockSize = new("--block-size") { DefaultValueFactory = _ => 16, Description = "Tokens per KV cache block." };
    private static readonly Option<int> NumGpuBlocks = new("--num-gpu-blocks", "--num-gpu-blocks-override") { DefaultValueFactory = _ => 8192, Description = "KV cache capacity in blocks." };
    private static readonly Option<bool> EnablePrefixCaching = new("--enable-prefix-caching") { DefaultValueFactory = _ => true, Description = "Reuse KV blocks of shared prefixes (on by default)." };
    private static readonly Option<bool> NoEnablePrefixCaching = new("--no-enable-prefix-caching") { Description = "Turn prefix caching off." };
    private static readonly Option<bool> EnableLora = new("--enable-lora") { Description = "Serve LoRA adapters." };
    private static readonly Option<int> MaxLoras = new("--max-loras") { DefaultValueFactory = _ => 1, Description = "Distinct adapters in one batch." };
    private static readonly Option<string[]> LoraModules = new("--lora-modules") { AllowMultipleArgumentsPerToken = true, Description = "Adapters: name=path or JSON {\"name\",\"path\",\"base_model_name\"}." };
    private static readonly Option<string?> ApiKey = new("--api-key") { Description = "Require this bearer key on /v1 routes (default: VLLM_API_KEY)." };
    private static readonly Option<int> Seed = new("--seed") { DefaultValueFactory = _ => 0, Description = "Seed of the generated text." };
    private static readonly Option<bool> EnablePromptTokensDetails = new("--enable-prompt-tokens-details") { Description = "Report cached prompt tokens in usage." };
    private static readonly Option<string> LatencyPreset = new("--latency-preset") { DefaultValueFactory = _ => "h100-8b", Description = "Latency model: " + string.Join(", ", LatencyProfile.Presets.Keys) + "." };
    private static readonly Option<double?> PrefillOverhead = new("--prefill-overhead-ms") { Description = "Fixed cost of a prefill, in ms (overrides the preset)." };
    private static readonly Option<double?> PrefillPerToken = new("--prefill-time-per-token-ms") { Description = "Prefill time per uncached prompt token, in ms." };
    private static readonly Option<double?> InterTokenLatency = new("--inter-token-latency-ms") { Description = "Time between output tokens, in ms." };
    private static readonly Option<double?> TimeFactorUnderLoad = new("--time-factor-under-load") { Description = "How much slower compute is with max-num-seqs running (≥ 1)." };
    private static readonly Option<double?> LatencyJitter = new("--latency-jitter") { Description = "Relative random spread of each delay (0–1)." };
    private static readonly Option<OutputMode> Output = new("--output-mode") { DefaultValueFactory = _ => OutputMode.Random, Description = "random: plausible words; echo: the prompt back." };
    private static readonly Option<int> EmbeddingDim = new("--embedding-dim") { DefaultValueFactory = _ => 1024, Description = "Length of /v1/embeddings vectors." };
    private static readonly Option<string?> ShowHiddenMetricsForVersion = new("--show-hidden-metrics-for-version") { Description = "Also expose the metrics hidden since this release (vLLM 0.11: only \"0.10\" works), e.g. vllm:gpu_cache_usage_perc." };
    private static readonly Option<double> GpuMemoryUtilization = new("--gpu-memory-utilization") { DefaultValueFactory = _ => 0.9, Description = "Share of GPU memory for the engine (0–1]; reported in vllm:cache_config_info." };
    private static readonly Option<string> KvCacheDtype = new("--kv-cache-dtype") { DefaultValueFactory = _ => "auto", Description = "KV cache data type; reported in vllm:cache_config_info." };
    private static readonly Option<double> SwapSpace = new("--swap-space") { DefaultValueFactory = _ => 0, Description = "CPU swap space per GPU in GiB; reported in vllm:cache_config_info." };
    private static readonly Option<string?> KvCacheServer = new("--kv-cache-server") { Description = "Cache server URL: report KV block events to it (join the KV-cache network)." };
    private static readonly Option<string?> KvEngineId = new("--kv-engine-id") { Description = "This engine's id in the cache server's index (default: its own URL)." };
    private static readonly Option<int> KvEventsInterval = new("--kv-events-interval-ms") { DefaultValueFactory = _ => 100, Description = "How often KV events are sent." };
    private static readonly Option<bool> KvOffload = new("--kv-offload") { Description = "Write evicted KV blocks to the cache server's pool; fetch from it on a local miss." };
    private static readonly Option<bool> KvStoreOnCompute = new("--kv-store-on-compute") { Description = "With --kv-offload: write every full KV block to the pool as it is computed (prefill and decode), not only on eviction." };
    private static readonly Option<long> KvBytesPerToken = new("--kv-bytes-per-token") { DefaultValueFactory = _ => 131072, Description = "KV bytes per token (Llama-3-8B: 131072)." };
    private static readonly Option<double> KvScale = new("--kv-scale") { DefaultValueFactory = _ => 1.0 / 1024, Description = "Share of the KV bytes actually moved (time is charged for all)." };
    private static readonly Option<double> KvTransferGBps = new("--kv-transfer-gbps") { DefaultValueFactory = _ => 12.5, Description = "Pool-to-GPU bandwidth in GB/s." };
    private static readonly Option<string> ResponseRole = new("--response-role") { DefaultValueFactory = _ => "assistant", Description = "Role of generated chat messages." };
    private static readonly Option<SchedulingPolicy> SchedulingPolicyOption = new("--scheduling-policy") { DefaultValueFactory = _ => SchedulingPolicy.Fcfs, Description = "fcfs, or priority: by each request's priority (lower first)." };
    private static readonly Option<bool> EnableAutoToolChoice = new("--enable-auto-tool-choice") { Description = "Allow tool_choice \"auto\" (needs --tool-call-parser)." };
    private static readonly Option<string?> ToolCallParser = new("--tool-call-parser") { Description = "The model's tool-call format (any name; the simulator writes OpenAI tool calls)." };
    private static readonly Option<bool> EnableForceIncludeUsage = new("--enable-force-include-usage") { Description = "Every stream ends with a usage chunk." };
    private static readonly Option<bool> EnableRequestIdHeaders = new("--enable-request-id-headers") { Description = "Every response carries X-Request-Id (the request's, or a new one)." };
    private static readonly Option<int> MaxLogprobs = new("--max-logprobs") { DefaultValueFactory = _ => 20, Description = "Most logprobs a request may ask for." };
    private static readonly Option<long?> KvCacheMemoryBytes = new("--kv-cache-memory-bytes") { Description = "KV cache size in bytes: sets the block count from --kv-bytes-per-token (unless --num-gpu-blocks is given)." };
    private static readonly Option<int> MaxLoraRank = new("--max-lora-rank") { DefaultValueFactory = _ => 16, Description = "Highest adapter rank a load accepts." };
    private static readonly Option<string?> LoraHubDir = new("--lora-hub-dir") { Description = "Local folder standing for the Hugging Face hub: adapter repo ids resolve to DIR/org/name (default: every repo id resolves)." };
    private static readonly Option<bool> LoraLoadInplace = new("--lora-load-inplace") { Description = "Newer vLLM's LoRA loading: load_inplace reloads an adapter; failures other than a missing adapter are 500s." };
    private static readonly Option<double> LoraLoadSeconds = new("--lora-load-seconds") { DefaultValueFactory = _ => 0.5, Description = "Simulated time an adapter load takes (runtime loads and --lora-modules); no engine step runs meanwhile, as in vLLM's engine core." };
    private static readonly Option<bool> EnableSleepMode = new("--enable-sleep-mode") { Description = "Sleep frees GPU memory: a forward pass while asleep kills the engine core, as in vLLM 0.11." };
    private static readonly Option<bool> EnableServerLoadTracking = new("--enable-server-load-tracking") { Description = "/load counts the requests in flight on the generation routes." };
    private static readonly Option<double> StartupDelay = new("--startup-delay-seconds") { DefaultValueFactory = _ => 0, Description = "Simulated model loading: nothing listens for this long." };
    private static readonly Option<int?> FaultEngineDeadAfterRequests = new("--fault-engine-dead-after-requests") { Description = "Fault: the engine core dies when request N+1 reaches it (/health 503, requests fail as vLLM's EngineDeadError)." };
    private static readonly Option<double> FailureRate = new("--failure-rate") { DefaultValueFactory = _ => 0, Description = "Share of requests (0–1) that fail on purpose." };
    private static readonly Option<string[]> FailureTypes = new("--failure-types") { AllowMultipleArgumentsPerToken = true, Description = "rate_limit, invalid_api_key, context_length, server_error, invalid_request, model_not_found, service_unavailable." };

    /// <summary>vLLM flags that change nothing in a simulation; accepted so that real command lines work unchanged.</summary>
    private static readonly string[] AcceptedAndIgnored =
    [
        "--tensor-parallel-size", "--pipeline-parallel-size", "--data-parallel-size", "--dtype",
        "--trust-remote-code", "--download-dir", "--disable-log-requests", "--disable-log-stats", "--enable-log-requests",
        "--max-cpu-loras", "--enforce-eager", "--uvicorn-log-level", "--chat-template",
        "--quantization", "--enable-chunked-prefill",
        "--max-num-batched-tokens", "--tokenizer", "--revision", "--load-format", "--kv-transfer-config",
        "--distributed-executor-backend", "--enable-expert-parallel", "--generation-config", "--disable-fastapi-docs",
        "--disable-uvicorn-access-log", "--max-log-len", "--allowed-origins", "--allowed-methods", "--allowed-headers", "--allow-credentials",
        "--root-path", "--enable-log-outputs", "--return-tokens-as-token-ids", "--reasoning-parser", "--chat-template-content-format",
        "--ssl-keyfile", "--ssl-certfile", "--max-seq-len-to-capture", "--seed-offset", "--hf-overrides", "--compilation-config",
        "--limit-mm-per-prompt", "--mm-processor-kwargs", "--async-scheduling", "--enable-prefix-caching-hash-algo", "--prefix-caching-hash-algo",
    ];

    private static readonly Option<string?>[] IgnoredOptions =
        [.. AcceptedAndIgnored.Select(name => new Option<string?>(name) { Arity = ArgumentArity.ZeroOrOne, Hidden = true })];

    public static RootCommand Create(Func<EngineOptions, CancellationToken, Task<int>> run)
    {
        var root = new RootCommand("EngineSim: a vLLM-compatible engine simulator (OpenAI API, metrics, prefix cache, continuous batching) for machines without a GPU.")
        {
            ModelArgument, Model, ServedModelName, Host, Port, MaxModelLen, MaxNumSeqs, BlockSize, NumGpuBlocks, EnablePrefixCaching,
            NoEnablePrefixCaching, EnableLora, MaxLoras, LoraModules, ApiKey, Seed, EnablePromptTokensDetails, LatencyPreset, PrefillOverhead,
            PrefillPerToken, InterTokenLatency, TimeFactorUnderLoad, LatencyJitter, Output, EmbeddingDim, ShowHiddenMetricsForVersion, GpuMemoryUtilization, KvCacheDtype, SwapSpace, KvCacheServer, KvEngineId, KvEventsInterval, KvOffload, KvStoreOnCompute, KvBytesPerToken, KvScale, KvTransferGBps, FailureRate, FailureTypes,
            ResponseRole, SchedulingPolicyOption, EnableAutoToolChoice, ToolCallParser, EnableForceIncludeUsage, EnableRequestIdHeaders, MaxLogprobs, KvCacheMemoryBytes,
            MaxLoraRank, LoraHubDir, LoraLoadInplace, LoraLoadSeconds, EnableSleepMode, EnableServerLoadTracking, StartupDelay, FaultEngineDeadAfterRequests,
        };
        foreach (var option in IgnoredOptions)
        {
            root.Options.Add(option);
        }
        root.SetAction(async (result, cancellationToken) =>
        {
            EngineOptions options;
            try
            {
                options = Bind(result);
            }
            catch (FormatException e)
            {
                await Console.Error.WriteLineAsync($"error: {e.Message}");
                return 2;
            }
            var problems = options.Validate().ToList();
            if (problems.Count > 0)
            {
                foreach (var problem in problems)
                {
                    await Console.Error.WriteLineAsync($"error: {problem}");
                }
                return 2;
            }
            return await run(options, cancellationToken);
        });
        return root;
    }

    /// <summary>Parses arguments into options without running anything (tests, tools).</summary>
    public static EngineOptions Parse(params string[] args)
    {
        var root = Create((_, _) => Task.FromResult(0));
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            throw new FormatException(string.Join("; ", result.Errors.Select(e => e.Message)));
        }
        return Bind(result);
    }

    private static EngineOptions Bind(ParseResult r)
    {
        var model = r.GetValue(Model) ?? r.GetValue(ModelArgument);
        if (r.GetValue(Model) is { } named && r.GetValue(ModelArgument) is { } positional && named != positional)
        {
            throw new FormatException($"the model is given twice, as '{positional}' and as --model '{named}'");
        }
        var presetName = r.GetValue(LatencyPreset)!;
        if (!LatencyProfile.Presets.TryGetValue(presetName, out var preset))
        {
            throw new FormatException($"--latency-preset '{presetName}' is unknown; choose one of {string.Join(", ", LatencyProfile.Presets.Keys)}");
        }
        var latency = preset with
        {
            PrefillOverheadMs = r.GetValue(PrefillOverhead) ?? preset.PrefillOverheadMs,
            PrefillTimePerTokenMs = r.GetValue(PrefillPerToken) ?? preset.PrefillTimePerTokenMs,
            InterTokenLatencyMs = r.GetValue(InterTokenLatency) ?? preset.InterTokenLatencyMs,
            TimeFactorUnderLoad = r.GetValue(TimeFactorUnderLoad) ?? preset.TimeFactorUnderLoad,
            Jitter = r.GetValue(LatencyJitter) ?? preset.Jitter,
        };
        return new EngineOptions
        {
            Model = model ?? "",
            ServedModelNames = r.GetValue(ServedModelName) ?? [],
            Host = r.GetValue(Host)!,
            Port = r.GetValue(Port),
            MaxModelLen = r.GetValue(MaxModelLen),
            MaxNumSeqs = r.GetValue(MaxNumSeqs),
            BlockSize = r.GetValue(BlockSize),
            NumGpuBlocks = NumGpuBlocksFrom(r),
            NumGpuBlocksOverridden = r.GetResult(NumGpuBlocks) is { Implicit: false },
            EnablePrefixCaching = r.GetValue(EnablePrefixCaching) && !r.GetValue(NoEnablePrefixCaching),
            EnableLora = r.GetValue(EnableLora),
            MaxLoras = r.GetValue(MaxLoras),
            LoraModules = [.. (r.GetValue(LoraModules) ?? []).Select(ParseLora)],
            ApiKey = r.GetValue(ApiKey) ?? Environment.GetEnvironmentVariable("VLLM_API_KEY"),
            Seed = r.GetValue(Seed),
            EnablePromptTokensDetails = r.GetValue(EnablePromptTokensDetails),
            Latency = latency,
            LatencyPresetName = presetName,
            Output = r.GetValue(Output),
            EmbeddingDimensions = r.GetValue(EmbeddingDim),
            ShowHiddenMetricsForVersion = r.GetValue(ShowHiddenMetricsForVersion),
            GpuMemoryUtilization = r.GetValue(GpuMemoryUtilization),
            KvCacheDtype = r.GetValue(KvCacheDtype)!,
            SwapSpaceGiB = r.GetValue(SwapSpace),
            KvCacheServer = r.GetValue(KvCacheServer) is { Length: > 0 } cacheServer
                ? Uri.TryCreate(cacheServer.TrimEnd('/') + "/", UriKind.Absolute, out var uri) ? uri : throw new FormatException($"--kv-cache-server '{cacheServer}' is not a URL")
                : null,
            KvEngineId = r.GetValue(KvEngineId),
            KvEventsIntervalMs = r.GetValue(KvEventsInterval),
            KvOffload = r.GetValue(KvOffload),
            KvStoreOnCompute = r.GetValue(KvStoreOnCompute),
            KvBytesPerToken = r.GetValue(KvBytesPerToken),
            KvScale = r.GetValue(KvScale),
            KvTransferGBps = r.GetValue(KvTransferGBps),
            FailureRate = r.GetValue(FailureRate),
            MaxLoraRank = r.GetValue(MaxLoraRank),
            LoraHubDirectory = r.GetValue(LoraHubDir) is { Length: > 0 } hub ? Path.GetFullPath(hub) : null,
            LoraLoadInplace = r.GetValue(LoraLoadInplace),
            LoraLoadSeconds = r.GetValue(LoraLoadSeconds),
            EnableSleepMode = r.GetValue(EnableSleepMode),
            EnableServerLoadTracking = r.GetValue(EnableServerLoadTracking),
            StartupDelaySeconds = r.GetValue(StartupDelay),
            FaultEngineDeadAfterRequests = r.GetValue(FaultEngineDeadAfterRequests),
            ServerDevMode = VllmEnvironment.IntFlag(VllmEnvironment.ServerDevMode),
            AllowRuntimeLoraUpdating = VllmEnvironment.TrueFlag(VllmEnvironment.AllowRuntimeLoraUpdating),
            KeepAliveOnEngineDeath = VllmEnvironment.SetFlag(VllmEnvironment.KeepAliveOnEngineDeath),
            HttpTimeoutKeepAliveSeconds = VllmEnvironment.Int(VllmEnvironment.HttpTimeoutKeepAlive, 5),
            FailureTypes = [.. (r.GetValue(FailureTypes) ?? []).SelectMany(t => t.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Select(ParseFailureType)],
            ResponseRole = r.GetValue(ResponseRole)!,
            SchedulingPolicy = r.GetValue(SchedulingPolicyOption),
            EnableAutoToolChoice = r.GetValue(EnableAutoToolChoice),
            ToolCallParser = r.GetValue(ToolCallParser),
            EnableForceIncludeUsage = r.GetValue(EnableForceIncludeUsage),
            EnableRequestIdHeaders = r.GetValue(EnableRequestIdHeaders),
            MaxLogprobs = r.GetValue(MaxLogprobs),
            IgnoredFlags = [.. IgnoredOptions.Where(o => r.GetResult(o) is not null).Select(o => r.GetValue(o) is { } value ? $"{o.Name} {value}" : o.Name)],
        };
    }

    /// <summary>
    /// <c>--num-gpu-blocks</c> when given; else, with <c>--kv-cache-memory-bytes</c>, as many blocks as those bytes hold at
    /// <c>--kv-bytes-per-token</c> (vLLM sizes its cache from the memory it is given the same way); else the default.
    /// </summary>
    private static int NumGpuBlocksFrom(ParseResult r)
    {
        if (r.GetResult(NumGpuBlocks) is null or { Implicit: true } && r.GetValue(KvCacheMemoryBytes) is { } bytes)
        {
            var blockBytes = (long)r.GetValue(BlockSize) * r.GetValue(KvBytesPerToken);
            return blockBytes <= 0 ? 0 : (int)Math.Clamp(bytes / blockBytes, 0, int.MaxValue);
        }
        return r.GetValue(NumGpuBlocks);
    }

    internal static LoraModule ParseLora(string text)
    {
        if (text.TrimStart().StartsWith('{'))
        {
            try
            {
                using var json = JsonDocument.Parse(text);
                var root = json.RootElement;
                var name = root.TryGetProperty("name", out var n) ? n.GetString() : null;
                var path = root.TryGetProperty("path", out var p) ? p.GetString() : null;
                var baseModel = root.TryGetProperty("base_model_name", out var b) ? b.GetString() : null;
                if (string.IsNullOrWhiteSpace(name) || string.IsNullOrWhiteSpace(path))
                {
                    throw new FormatException($"--lora-modules entry {text} needs \"name\" and \"path\"");
                }
                return new LoraModule(name, path, baseModel);
            }
            catch (JsonException e)
            {
                throw new FormatException($"--lora-modules entry {text} is not valid JSON: {e.Message}");
            }
        }
        var eq = text.IndexOf('=');
        if (eq <= 0 || eq == text.Length - 1)
        {
            throw new FormatException($"--lora-modules entry '{text}' must be name=path");
        }
        return new LoraModule(text[..eq], text[(eq + 1)..], null);
    }

    internal static FailureType ParseFailureType(string text) => text.ToLowerInvariant() switch
    {
        "rate_limit" => FailureType.RateLimit,
        "invalid_api_key" => FailureType.InvalidApiKey,
        "context_length" => FailureType.ContextLength,
        "server_error" => FailureType.ServerError,
        "invalid_request" => FailureType.InvalidRequest,
        "model_not_found" => FailureType.ModelNotFound,
        "service_unavailable" => FailureType.ServiceUnavailable,
        _ => throw new FormatException($"--failure-types '{text}' is unknown"),
    };
}
