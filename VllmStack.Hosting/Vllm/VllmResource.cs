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

/// <summary>A router's engine list that follows the group's healthy replicas (a dynamic config file the router re-reads).</summary>
public sealed record EngineListAnnotation(VllmResource Group, string FilePath) : IResourceAnnotation;
