namespace VllmStack.Router.Lora;

/// <summary>Where LoRA adapters go: <c>Router:Lora</c>.</summary>
public enum LoraPlacement
{
    /// <summary>The manager places adapters where demand is; routing prefers engines holding the adapter (the default).</summary>
    Demand,

    /// <summary>
    /// The baseline of stacks without a manager: route as if every engine held every adapter, and load the adapter onto
    /// whichever engine the routing chose when it lacks it (unloading that engine's least recently used adapter when full).
    /// </summary>
    OnMiss,
}

/// <summary>The LoRA adapter manager's settings (section <c>Router:Lora</c>).</summary>
public sealed class LoraOptions
{
    /// <summary>
    /// The adapter catalogue, a JSON file <c>{"adapters":[{"name","base_model","source"}]}</c> re-read when it changes; the
    /// admin API writes it back when it is a writable file. Unset: adapters added through the admin API live in memory.
    /// </summary>
    public string? AdaptersFile { get; set; }

    /// <summary>On Kubernetes: the ConfigMap (key <c>adapters.json</c>) the admin API writes, mounted as <see cref="AdaptersFile"/>.</summary>
    public string? AdaptersConfigMap { get; set; }

    /// <summary><c>demand</c> (default) or <c>on-miss</c>; see <see cref="LoraPlacement"/>.</summary>
    public string Placement { get; set; } = "demand";

    /// <summary>
    /// Adapter slots per engine when the engine does not report them (vLLM's <c>--max-loras</c>, reported as the
    /// <c>max_lora</c> label of <c>vllm:lora_requests_info</c>); vLLM's default is 1.
    /// </summary>
    public int MaxLoras { get; set; } = 1;

    /// <summary>Seconds a request waits for its adapter to be loaded before it gets 503.</summary>
    public double LoadTimeout { get; set; } = 60;

    /// <summary>Seconds one load or unload call to an engine may take.</summary>
    public double EngineCallTimeout { get; set; } = 120;

    /// <summary>Seconds a failed load of an adapter is remembered, so that requests for it fail fast instead of retrying it at once.</summary>
    public double FailureMemory { get; set; } = 10;

    /// <summary>Seconds between checks that engines still hold the adapters placed on them (restarts lose them).</summary>
    public double ReconcileInterval { get; set; } = 2;

    /// <summary>
    /// A hot adapter is loaded onto one more engine when its least-loaded holder's load exceeds the least-loaded engine
    /// of its base model by more than this many requests…
    /// </summary>
    public int ImbalanceAbsolute { get; set; } = 4;

    /// <summary>…and is more than this multiple of (that engine's load + 1).</summary>
    public double ImbalanceRatio { get; set; } = 2;

    /// <summary>Key required for <c>/admin/*</c>; unset: the router's client keys guard it (if any).</summary>
    public string? AdminApiKey { get; set; }

    public LoraPlacement PlacementMode => Placement == "on-miss" ? LoraPlacement.OnMiss : LoraPlacement.Demand;

    public IEnumerable<string> Validate()
    {
        if (Placement is not ("demand" or "on-miss"))
        {
            yield return $"--lora-placement must be demand or on-miss, not '{Placement}'";
        }
        if (MaxLoras < 1)
        {
            yield return $"--max-loras must be at least 1, not {MaxLoras}";
        }
        if (LoadTimeout <= 0 || EngineCallTimeout <= 0 || FailureMemory < 0 || ReconcileInterval <= 0)
        {
            yield return "--lora-load-timeout and the other LoRA timeouts must be positive";
        }
        if (ImbalanceAbsolute < 0 || ImbalanceRatio < 1)
        {
            yield return "Router:Lora:ImbalanceAbsolute must be >= 0 and ImbalanceRatio >= 1";
        }
        if (AdaptersConfigMap is { Length: > 0 } && AdaptersFile is not { Length: > 0 })
        {
            yield return "--lora-adapters-configmap needs --lora-adapters-file (the ConfigMap's mounted adapters.json)";
        }
    }
}
