namespace VllmStack.Hosting.Models;

/// <summary>
/// One model of the stack as configuration declares it (an entry of the AppHost's <c>Models</c> section): its own engine
/// group, replicas, autoscaling bounds, engine options and LoRA adapters. Unset engine options take the stack's defaults.
/// </summary>
public sealed class ModelOptions
{
    /// <summary>The model the engines serve and clients ask for (vLLM's positional model argument, e.g. a Hugging Face repo id).</summary>
    public string Name { get; set; } = "";

    /// <summary>
    /// The engine group's resource name (dashboard, replica names <c>{Group}-0</c>…, the published Deployment); default: derived
    /// from <see cref="Name"/> (<c>Qwen/Qwen2.5-7B-Instruct</c> → <c>engine-qwen2-5-7b-instruct</c>).
    /// </summary>
    public string? Group { get; set; }

    /// <summary>Replicas started with the stack; default: the stack's <c>engine-replicas</c> parameter.</summary>
    public int? Replicas { get; set; }

    public ModelAutoscalingOptions Autoscaling { get; set; } = new();

    /// <summary>EngineSim's latency preset when the engines are simulated; default: the stack's <c>engine-preset</c>.</summary>
    public string? SimulatorPreset { get; set; }

    /// <summary>GPUs per replica; default: the stack's <c>gpus-per-engine</c>.</summary>
    public int? Gpus { get; set; }

    /// <summary>vLLM's <c>--max-model-len</c>; default: the model's own.</summary>
    public int? MaxModelLen { get; set; }

    /// <summary>
    /// vLLM's <c>--max-loras</c>: distinct adapters in one batch, and the adapter slots per engine the router's LoRA manager
    /// fills; default: vLLM's (1). Only with <see cref="Adapters"/>.
    /// </summary>
    public int? MaxLoras { get; set; }

    /// <summary>
    /// The LoRA adapters of this model (their base model is <see cref="Name"/>). Any turns LoRA on in the engines; the router
    /// loads each adapter onto engines as requests for it come (more can be added at run time through its admin API).
    /// </summary>
    public List<LoraAdapterOptions> Adapters { get; set; } = [];
}

/// <summary>The autoscaler's bounds for one model; default: the stack's <c>autoscale-min</c> and <c>autoscale-max</c>.</summary>
public sealed class ModelAutoscalingOptions
{
    public int? MinReplicas { get; set; }

    public int? MaxReplicas { get; set; }
}

/// <summary>A LoRA adapter: the name clients ask for, and where the engine loads it from (a local path or a Hugging Face repo id).</summary>
public sealed class LoraAdapterOptions
{
    /// <summary>The model name clients ask for (no '=' or whitespace; unique across models and adapters).</summary>
    public string Name { get; set; } = "";

    /// <summary>Where engines load the adapter from: an absolute local path, or a Hugging Face repo id the engine resolves.</summary>
    public string Source { get; set; } = "";

    /// <summary>
    /// The model the adapter was trained on; optional, and when given it must be the model the adapter is declared under
    /// (an adapter is served by its base model's engines), e.g. when entries are copied from a router's catalogue.
    /// </summary>
    public string? BaseModel { get; set; }
}
