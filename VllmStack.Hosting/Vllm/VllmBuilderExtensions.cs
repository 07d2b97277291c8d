using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using VllmStack.Hosting.Common;

namespace VllmStack.Hosting.Vllm;

public static class VllmBuilderExtensions
{
    /// <summary>The configuration key that forces the engines' mode (<c>container</c>, <c>executable</c>, <c>simulated</c>).</summary>
    public const string ModeConfigurationKey = "Vllm:Mode";

    /// <summary>
    /// A group of vLLM engines serving <paramref name="model"/>, each replica its own resource under the group: the
    /// <c>vllm/vllm-openai</c> container with GPUs where a container engine and an NVIDIA GPU are present, else a
    /// <c>vllm</c> executable on PATH, else the simulator project <typeparamref name="TSimulator"/> (EngineSim,
    /// <c>Projects.VllmStack_EngineSim</c>) with the same options — shown as simulated. Starts with one replica
    /// (<see cref="WithReplicas"/>); when published, the group is one Deployment.
    /// </summary>
    public static IResourceBuilder<VllmResource> AddVllm<TSimulator>(this IDistributedApplicationBuilder builder, string name,
        IResourceBuilder<ParameterResource> model) where TSimulator : IProjectMetadata, new() =>
        // The generated metadata type says the project was built with the AppHost, so each replica runs with --no-build.
        AddVllm(builder, name, model, (appBuilder, replica) => appBuilder.AddServiceProject<TSimulator>(replica));

    /// <summary>
    /// A group of vLLM engines serving <paramref name="model"/> as the <c>vllm/vllm-openai</c> container (where a
    /// container engine and an NVIDIA GPU are present) or the <c>vllm</c> executable on PATH; with neither, building the
    /// app fails with a <see cref="DistributedApplicationException"/>. See <see cref="AddVllm{TSimulator}"/> to fall back
    /// to the simulator.
    /// </summary>
    public static IResourceBuilder<VllmResource> AddVllm(this IDistributedApplicationBuilder builder, string name,
        IResourceBuilder<ParameterResource> model) => AddVllm(builder, name, model, addSimulator: null);

    private static IResourceBuilder<VllmResource> AddVllm(IDistributedApplicationBuilder builder, string name,
        IResourceBuilder<ParameterResource> model, SimulatorFactory? addSimulator)
    {
        var mode = builder.ExecutionContext.IsPublishMode ? EngineMode.Container : ChooseMode(builder, name, addSimulator is not null);
        var group = new VllmResource(name, model.Resource, mode);
        var resource = builder.AddResource(group)
            .WithInitialState(new CustomResourceSnapshot
            {
                ResourceType = "vLLM",
                State = KnownResourceStates.Starting,
                Properties =
                [
                    new(CustomResourceKnownProperties.Source, group.Description),
                    new("vllm.simulated", mode == EngineMode.Simulated ? "true" : "false"),
                ],
            });
        if (builder.ExecutionContext.IsRunMode)
        {
            EngineGroupController.Attach(builder, resource, addSimulator);
        }
        return resource;
    }

    /// <summary>Runs <paramref name="replicas"/> replicas from the start (each its own resource, endpoint and process).</summary>
    public static IResourceBuilder<VllmResource> WithReplicas(this IResourceBuilder<VllmResource> builder, int replicas)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(replicas);
        builder.Resource.Replicas = replicas;
        EngineGroupController.EnsureReplicas(builder, Math.Max(replicas, builder.Resource.ReplicaResources.Count));
        return builder;
    }

    public static IResourceBuilder<VllmResource> WithEngineOptions(this IResourceBuilder<VllmResource> builder, Action<VllmEngineOptions> configure)
    {
        configure(builder.Resource.Options);
        return builder;
    }

    /// <summary>
    /// Declares a LoRA adapter of the group's model: clients ask for it as <paramref name="name"/>, engines load it from
    /// <paramref name="source"/> (a local path, or a Hugging Face repo id the engine resolves). Engines of a group with
    /// adapters run with LoRA on (<c>--enable-lora</c>, <c>--max-loras</c> when set) and with runtime loading allowed
    /// (<c>VLLM_ALLOW_RUNTIME_LORA_UPDATING=True</c>). Routers given the group (<c>WithEngines</c>) get the adapter in their
    /// catalogue and load it where requests for it go; a group no router serves loads its adapters at start
    /// (<c>--lora-modules</c>).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> or <paramref name="source"/> is empty, <paramref name="name"/>
    /// holds '=' or whitespace, or the group already has an adapter of that name.</exception>
    public static IResourceBuilder<VllmResource> WithLoraAdapter(this IResourceBuilder<VllmResource> builder, string name, string source)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(source);
        if (!IsAdapterName(name))
        {
            throw new ArgumentException($"LoRA adapter name '{name}' must be non-empty, without '=' or whitespace.", nameof(name));
        }
        if (builder.Resource.LoraAdapters.Any(a => a.Name == name))
        {
            throw new ArgumentException($"Engine group '{builder.Resource.Name}' already has a LoRA adapter named '{name}'.", nameof(name));
        }
        return builder.WithAnnotation(new LoraAdapterAnnotation(name, source));
    }

    /// <summary>
    /// Whether <paramref name="name"/> can name a LoRA adapter: not empty, no whitespace, no '=' (vLLM's
    /// <c>--lora-modules name=path</c> splits at it).
    /// </summary>
    public static bool IsAdapterName(string? name) =>
        !string.IsNullOrEmpty(name) && !name.Contains('=', StringComparison.Ordinal) && !name.Any(char.IsWhiteSpace);

    /// <summary>
    /// Joins the KV-cache network: engines report their KV blocks to <paramref name="cacheServer"/>, offload to its pool,
    /// and start once it is healthy. Simulated engines take it as <c>--kv-cache-server</c>; a real vLLM needs LMCache.
    /// </summary>
    public static IResourceBuilder<VllmResource> WithKvCacheServer(this IResourceBuilder<VllmResource> builder, IResourceBuilder<IResourceWithEndpoints> cacheServer)
    {
        builder.Resource.KvCacheServer = cacheServer.Resource;
        foreach (var replica in builder.Resource.ReplicaResources)
        {
            replica.Annotations.Add(new WaitAnnotation(cacheServer.Resource, WaitType.WaitUntilHealthy));
        }
        return builder;
    }

    /// <summary>
    /// Engines require <paramref name="apiKey"/> on <c>/v1</c> (vLLM's <c>VLLM_API_KEY</c>); routers given these engines
    /// with <c>WithEngines</c> send it. An empty value means no key.
    /// </summary>
    public static IResourceBuilder<VllmResource> WithApiKey(this IResourceBuilder<VllmResource> builder, IResourceBuilder<ParameterResource> apiKey)
    {
        builder.Resource.ApiKey = apiKey.Resource;
        return builder.WithAnnotation(new ReplicaEnvironmentAnnotation("VLLM_API_KEY", apiKey.Resource));
    }

    /// <summary>The Hugging Face token for gated models (<c>HF_TOKEN</c>); an empty value means none.</summary>
    public static IResourceBuilder<VllmResource> WithHuggingFaceToken(this IResourceBuilder<VllmResource> builder, IResourceBuilder<ParameterResource> token) =>
        builder.WithAnnotation(new ReplicaEnvironmentAnnotation("HF_TOKEN", token.Resource));

    private static EngineMode ChooseMode(IDistributedApplicationBuilder builder, string name, bool hasSimulator)
    {
        if (builder.Configuration[ModeConfigurationKey] is { Length: > 0 } configured)
        {
            return Enum.TryParse<EngineMode>(configured, ignoreCase: true, out var forced)
                ? forced
                : throw new DistributedApplicationException($"{ModeConfigurationKey} '{configured}' is not container, executable or simulated.");
        }
        if (ContainerRuntime.HasNvidiaGpu())
        {
            return EngineMode.Container;
        }
        if (Executables.Which("vllm") is not null)
        {
            return EngineMode.Executable;
        }
        return hasSimulator
            ? EngineMode.Simulated
            : throw new DistributedApplicationException(
                $"Engine '{name}' has no way to run here: no GPU container, no vllm on PATH, and no simulator given (AddVllm<TSimulator>).");
    }
}

/// <summary>Adds the simulator project as the replica named by the second argument.</summary>
internal delegate IResourceBuilder<ProjectResource> SimulatorFactory(IDistributedApplicationBuilder builder, string replicaName);

/// <summary>An environment variable every replica of the group gets, from a parameter (a secret stays a secret).</summary>
public sealed record ReplicaEnvironmentAnnotation(string Name, ParameterResource Value) : IResourceAnnotation;
