using Aspire.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Vllm;

/// <summary>
/// A group of vLLM engine replicas serving one model: the parent of one resource per replica (<c>engine-0</c>,
/// <c>engine-1</c>, …), each with its own endpoint so that a router sees every replica — where Aspire's own
/// <c>WithReplicas</c> puts replicas behind one proxy that balances per connection. Replicas beyond the running count
/// are declared and wait to be started (scaling up); published, the group is one Deployment.
/// </summary>
public sealed class VllmResource(string name, ParameterResource model, EngineMode mode) : Resource(name)
{
    private readonly List<IResource> _replicas = [];

    /// <summary>The model every replica serves (vLLM's positional model argument).</summary>
    public ParameterResource Model { get; } = model;

    public EngineMode Mode { get; } = mode;

    public VllmEngineOptions Options { get; } = new();

    /// <summary>Replicas started with the application (and kept running across crashes).</summary>
    public int Replicas { get; internal set; } = 1;

    /// <summary>The replica resources, in index order: as many as the group may ever run here.</summary>
    public IReadOnlyList<IResource> ReplicaResources => _replicas;

    /// <summary>The key engines require on <c>/v1</c> (<c>VLLM_API_KEY</c>); routers to these engines send it.</summary>
    public ParameterResource? ApiKey { get; internal set; }

    /// <summary>The cache server the engines report their KV blocks to and offload to (simulated engines; vLLM needs LMCache for this).</summary>
    public IResourceWithEndpoints? KvCacheServer { get; internal set; }

    /// <summary>The LoRA adapters of the group's model, in the order they were declared (<c>WithLoraAdapter</c>).</summary>
    public IEnumerable<LoraAdapterAnnotation> LoraAdapters => Annotations.OfType<LoraAdapterAnnotation>();

    /// <summary>Whether the engines run with LoRA on and runtime loading allowed: the group declares adapters.</summary>
    public bool ServesLoraAdapters => LoraAdapters.Any();

    /// <summary>
    /// A router's LoRA manager loads the group's adapters where requests for them go (the group was given to a router
    /// with <c>WithEngines</c>); otherwise every replica loads them all at start.
    /// </summary>
    public bool LoraAdaptersManagedByRouter { get; internal set; }

    /// <summary>
    /// <c>vllm serve</c>'s options after the model, host and port: <see cref="Options"/>' ones, LoRA on when the group has
    /// adapters, and the adapters themselves (<c>--lora-modules</c>) only when no router manages them.
    /// </summary>
    public IEnumerable<string> ServeOptions() => Options.ServeOptions(ServesLoraAdapters,
        LoraAdaptersManagedByRouter ? null : [.. LoraAdapters.Select(a => $"{a.Name}={a.Source}")]);

    /// <summary>
    /// Environment variables every replica gets, wherever it runs: the group's (<see cref="ReplicaEnvironmentAnnotation"/>:
    /// token, key), and with adapters vLLM's switch for its runtime load and unload routes (<c>/v1/load_lora_adapter</c>).
    /// Values are strings or parameters.
    /// </summary>
    public IEnumerable<KeyValuePair<string, object>> ReplicaEnvironment()
    {
        foreach (var variable in Annotations.OfType<ReplicaEnvironmentAnnotation>())
        {
            yield return new(variable.Name, variable.Value);
        }
        if (ServesLoraAdapters)
        {
            yield return new(RuntimeLoraUpdatingVariable, "True");
        }
    }

    /// <summary>vLLM registers <c>/v1/load_lora_adapter</c> and <c>/v1/unload_lora_adapter</c> only when this is true.</summary>
    public const string RuntimeLoraUpdatingVariable = "VLLM_ALLOW_RUNTIME_LORA_UPDATING";

    /// <summary>What the dashboard says the replicas are.</summary>
    public string Description => Mode switch
    {
        EngineMode.Container => $"vLLM container vllm/vllm-openai:{Options.ImageTag} ({Options.GpuCount} GPU)",
        EngineMode.Executable => "vLLM executable (vllm serve)",
        _ => "EngineSim (simulated: no GPU path on this machine)",
    };

    internal void AddReplica(IResource replica) => _replicas.Add(replica);

    /// <summary>The name of replica <paramref name="index"/>: the group's name and the index, as Kubernetes names pods' ordinals.</summary>
    public string ReplicaName(int index) => $"{Name}-{index}";
}

/// <summary>Marks a resource as replica <see cref="Index"/> of an engine group.</summary>
public sealed record VllmReplicaAnnotation(VllmResource Group, int Index) : IResourceAnnotation;

/// <summary>
/// A LoRA adapter of the group's model: clients ask for it by <see cref="Name"/> (a model name to them), engines load it
/// from <see cref="Source"/> (a local path, or a Hugging Face repo id the engine resolves).
/// </summary>
public sealed record LoraAdapterAnnotation(string Name, string Source) : IResourceAnnotation;

/// <summary>A router's engine list that follows the group's healthy replicas (a dynamic config file the router re-reads).</summary>
public sealed record EngineListAnnotation(VllmResource Group, string FilePath) : IResourceAnnotation;
