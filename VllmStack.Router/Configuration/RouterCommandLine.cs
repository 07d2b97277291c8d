namespace VllmStack.Router.Configuration;

/// <summary>
/// The vLLM Production Stack router's flags, as aliases of configuration keys, so that its users' command
/// lines work here: <c>--routing-logic session</c> is <c>Router:RoutingLogic=session</c>.
/// </summary>
public static class RouterCommandLine
{
    public static readonly IDictionary<string, string> SwitchMappings = new Dictionary<string, string>
    {
        ["--host"] = "Router:Host",
        ["--port"] = "Router:Port",
        ["--service-discovery"] = "Router:ServiceDiscovery",
        ["--static-backends"] = "Router:StaticBackends",
        ["--static-models"] = "Router:StaticModels",
        ["--routing-logic"] = "Router:RoutingLogic",
        ["--session-key"] = "Router:SessionKey",
        ["--engine-stats-interval"] = "Router:EngineStatsInterval",
        ["--request-stats-window"] = "Router:RequestStatsWindow",
        ["--k8s-namespace"] = "Router:Kubernetes:Namespace",
        ["--k8s-label-selector"] = "Router:Kubernetes:LabelSelector",
        ["--k8s-port"] = "Router:Kubernetes:Port",
        ["--dynamic-config-json"] = "Router:DynamicConfigJson",
        ["--api-keys"] = "Router:ApiKeys",
        ["--engine-api-key"] = "Router:Forwarding:EngineApiKey",
        ["--max-attempts"] = "Router:Forwarding:MaxAttempts",
        ["--engine-services"] = "Router:EngineServices",
        ["--cache-server"] = "Router:KvAware:CacheServer",
        ["--scale-to-zero-models"] = "Router:ScaleToZeroModels",
        ["--max-migrations"] = "Router:Migration:MaxMigrations",
        // Admission control (Admission/AdmissionOptions.cs).
        ["--admission-control"] = "Router:Admission:Enabled",
        ["--max-waiting-per-engine"] = "Router:Admission:MaxWaitingPerEngine",
        ["--max-in-flight-per-engine"] = "Router:Admission:MaxInFlightPerEngine",
        ["--max-queue-size"] = "Router:Admission:MaxQueueSize",
        ["--max-queue-wait"] = "Router:Admission:MaxQueueWait",
        ["--client-max-concurrency"] = "Router:Admission:ClientMaxConcurrency",
        ["--client-tokens-per-minute"] = "Router:Admission:ClientTokensPerMinute",
        // LoRA adapters (Lora/LoraOptions.cs).
        ["--lora-adapters-file"] = "Router:Lora:AdaptersFile",
        ["--lora-adapters-configmap"] = "Router:Lora:AdaptersConfigMap",
        ["--lora-placement"] = "Router:Lora:Placement",
        ["--max-loras"] = "Router:Lora:MaxLoras",
        ["--lora-load-timeout"] = "Router:Lora:LoadTimeout",
        ["--admin-api-key"] = "Router:Lora:AdminApiKey",
    };

    public const string Usage = """
        VllmStack.Router: an OpenAI-compatible router in front of vLLM engines.

        Flags (vLLM Production Stack router compatible; any Router:* configuration key also works as --Router:Key=value):
          --host ADDRESS                 listen address (default 127.0.0.1)
          --port PORT                    listen port (default: ASPNETCORE_URLS / HTTP_PORTS, else 8080)
          --service-discovery static|k8s
          --static-backends URL,URL      engine base URLs
          --static-models M,M            one model per backend (routable before /v1/models answers)
          --engine-services NAME,NAME    Aspire services whose services__NAME__http__N endpoints are engines (default engine)
          --dynamic-config-json FILE     JSON re-read on change: static_backends, static_models, routing_logic
          --routing-logic roundrobin|session|leastload|prefixaware|kvaware (default leastload)
          --cache-server URL             the KV cache server for kvaware (else services__cacheserver__http__0)
          --session-key HEADER           session key header (or body field) for session routing (default x-user-id)
          --engine-stats-interval SEC    engine /metrics scrape interval (default 1)
          --request-stats-window SEC     sliding window of request stats (default 60)
          --k8s-namespace NS --k8s-label-selector SEL --k8s-port PORT
          --api-keys KEY,KEY             client keys (Authorization: Bearer KEY); none: open
          --engine-api-key KEY           key sent to engines
          --max-attempts N               engines tried per request before giving up (default 3)
          --scale-to-zero-models M,M     models that may have no engine: 503 + Retry-After (not 404) and counted as demand
          --max-migrations N             continuations of a stream whose engine fails mid-response (default 2; 0: off)
          --admission-control true|false queue requests in the router when every engine of their model is saturated (default false)
          --max-waiting-per-engine N     requests an engine may have waiting beyond its learnt batch before it is saturated (default 2)
          --max-in-flight-per-engine N   a fixed per-engine limit instead of the learnt batch + waiting (default 0: learn)
          --max-queue-size N             requests queued per model before 429 (default 1000)
          --max-queue-wait SEC           longest wait in the queue before 429 (default 30)
          --client-max-concurrency N     requests in progress per client before 429 (default 0: no limit)
          --client-tokens-per-minute N   estimated tokens per client per minute before 429 (default 0: no limit)
          --lora-adapters-file FILE      LoRA adapter catalogue {"adapters":[{"name","base_model","source"}]}, re-read on change
          --lora-adapters-configmap NAME Kubernetes: the ConfigMap (key adapters.json) the admin API writes
          --lora-placement demand|on-miss  adapters where the demand is (default), or loaded wherever a request lands
          --max-loras N                  adapter slots per engine that does not report vllm:lora_requests_info (default 1)
          --lora-load-timeout SEC        longest wait of a request for its adapter to load, then 503 (default 60)
          --admin-api-key KEY            key for /admin/* (default: the client keys guard it)
        """;

    /// <summary>Flags the Production Stack router takes without a value; configuration needs one.</summary>
    public static string[] Normalize(string[] args)
    {
        var result = new List<string>(args.Length);
        foreach (var arg in args)
        {
            if (arg is "--log-stats" or "--enable-batch-api")
            {
                continue;
            }
            result.Add(arg);
        }
        return [.. result];
    }
}
