namespace VllmStack.Router.Configuration;

/// <summary>The router's settings: section <c>Router</c> of configuration (appsettings, environment <c>Router__X</c>, command line).</summary>
public sealed class RouterOptions
{
    public const string Section = "Router";

    /// <summary>Address to listen on when <see cref="Port"/> is set; otherwise ASPNETCORE_URLS / HTTP_PORTS decide.</summary>
    public string Host { get; set; } = "127.0.0.1";

    public int? Port { get; set; }

    /// <summary><c>static</c> (a list, a dynamic config file, Aspire service variables) or <c>k8s</c> (pods by label).</summary>
    public string ServiceDiscovery { get; set; } = "static";

    /// <summary>Comma-separated engine base URLs.</summary>
    public string? StaticBackends { get; set; }

    /// <summary>Comma-separated model per static backend, routable before the first <c>/v1/models</c> answer.</summary>
    public string? StaticModels { get; set; }

    /// <summary>Aspire service names whose <c>services__NAME__http__N</c> endpoints are engines (comma-separated).</summary>
    public string EngineServices { get; set; } = "engine";

    /// <summary>A JSON file re-read when it changes: <c>static_backends</c>, <c>static_models</c>, <c>routing_logic</c>.</summary>
    public string? DynamicConfigJson { get; set; }

    /// <summary><c>roundrobin</c>, <c>session</c>, <c>leastload</c> or <c>prefixaware</c>.</summary>
    public string RoutingLogic { get; set; } = "leastload";

    /// <summary>Header (or, failing that, body field) holding the session key for <c>session</c> routing.</summary>
    public string SessionKey { get; set; } = "x-user-id";

    /// <summary>Seconds between scrapes of each engine's <c>/metrics</c>.</summary>
    public double EngineStatsInterval { get; set; } = 1;

    /// <summary>Seconds of the sliding window for per-engine request stats (QPS, TTFT, ITL, latency).</summary>
    public double RequestStatsWindow { get; set; } = 60;

    /// <summary>Seconds between refreshes of each engine's <c>/v1/models</c> (adapters loaded at runtime become routable).</summary>
    public double ModelRefreshInterval { get; set; } = 5;

    /// <summary>Seconds between active <c>/health</c> probes of each engine.</summary>
    public double HealthProbeInterval { get; set; } = 5;

    /// <summary>Timeout of each control call to an engine (models, health, metrics), in seconds.</summary>
    public double ControlTimeout { get; set; } = 2;

    /// <summary>
    /// Models that may have no engine at all (an autoscaler scaled them to zero), comma-separated: while none runs, a
    /// request for one gets 503 with <c>Retry-After</c> (<see cref="ScaledToZeroRetryAfter"/>) and counts as demand, rather
    /// than 404. Models the router has served are remembered the same way without being listed.
    /// </summary>
    public string? ScaleToZeroModels { get; set; }

    /// <summary>Seconds a client is asked to wait when its model has no engine yet (one is being started).</summary>
    public double ScaledToZeroRetryAfter { get; set; } = 5;

    /// <summary>Client API keys (comma-separated); empty: no key required.</summary>
    public string? ApiKeys { get; set; }

    /// <summary>Largest request body accepted, in bytes (413 beyond).</summary>
    public long MaxRequestBodyBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Largest multipart upload (audio transcription and translation) accepted, in bytes (413 beyond); streamed, not held.</summary>
    public long MaxUploadBodyBytes { get; set; } = 32 * 1024 * 1024;

    public Forwarding.ForwardingOptions Forwarding { get; set; } = new();

    public Health.OutlierDetectionOptions OutlierDetection { get; set; } = new();

    /// <summary>Mid-stream migration of streaming chat/completions requests (issue 16): <c>Router:Migration</c>.</summary>
    public Forwarding.Migration.MigrationOptions Migration { get; set; } = new();

    public Routing.SessionRoutingOptions Session { get; set; } = new();

    public Routing.PrefixRoutingOptions Prefix { get; set; } = new();

    public Routing.KvAwareRoutingOptions KvAware { get; set; } = new();

    public Discovery.KubernetesDiscoveryOptions Kubernetes { get; set; } = new();

    public Admission.AdmissionOptions Admission { get; set; } = new();

    /// <summary>LoRA adapter catalogue and manager (issue 17): <c>Router:Lora</c>.</summary>
    public Lora.LoraOptions Lora { get; set; } = new();

    public IReadOnlyList<Uri> StaticBackendUrls() => SplitList(StaticBackends).Select(ParseUrl).ToList();

    public IReadOnlyList<string> StaticModelNames() => SplitList(StaticModels);

    public IReadOnlyList<string> ApiKeyList() => SplitList(ApiKeys);

    public static IReadOnlyList<string> SplitList(string? value) =>
        string.IsNullOrWhiteSpace(value) ? [] : value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public static Uri ParseUrl(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? new Uri(uri.GetLeftPart(UriPartial.Path).TrimEnd('/') + "/")
            : throw new FormatException($"'{value}' is not an http(s) URL.");

    public IEnumerable<string> Validate()
    {
        if (ServiceDiscovery is not ("static" or "k8s"))
        {
            yield return $"--service-discovery must be static or k8s, not '{ServiceDiscovery}'";
        }
        if (!Routing.RoutingPolicyNames.All.Contains(RoutingLogic))
        {
            yield return $"--routing-logic must be one of {string.Join(", ", Routing.RoutingPolicyNames.All)}, not '{RoutingLogic}'";
        }
        string? urlProblem = null;
        try
        {
            _ = StaticBackendUrls();
        }
        catch (FormatException e)
        {
            urlProblem = $"--static-backends: {e.Message}";
        }
        if (urlProblem is not null)
        {
            yield return urlProblem;
        }
        var models = StaticModelNames();
        if (models.Count > 0 && models.Count != SplitList(StaticBackends).Count)
        {
            yield return $"--static-models lists {models.Count} models for {SplitList(StaticBackends).Count} backends; give one per backend";
        }
        if (ServiceDiscovery == "k8s")
        {
            foreach (var problem in Kubernetes.Validate())
            {
                yield return problem;
            }
        }
        if (Port is < 0 or > 65535)
        {
            yield return $"--port {Port} is not a TCP port";
        }
        if (EngineStatsInterval <= 0 || RequestStatsWindow <= 0 || ModelRefreshInterval <= 0 || HealthProbeInterval <= 0 || ControlTimeout <= 0)
        {
            yield return "intervals, windows and timeouts must be positive";
        }
        if (MaxRequestBodyBytes < 1024 || MaxUploadBodyBytes < 1024)
        {
            yield return "MaxRequestBodyBytes and MaxUploadBodyBytes must be at least 1024";
        }
        foreach (var problem in Forwarding.Validate().Concat(OutlierDetection.Validate()).Concat(Migration.Validate()).Concat(Admission.Validate()).Concat(Lora.Validate()))
        {
            yield return problem;
        }
    }
}
