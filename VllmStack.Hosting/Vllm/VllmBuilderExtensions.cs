using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Builder;
using VllmStack.Hosting.Publishing;

namespace VllmStack.Hosting.Vllm;

/// <summary>The engine list a router is kept up to date with: a dynamic config file the host rewrites when replicas change.</summary>
public sealed record EngineListAnnotation(VllmResource Engines, string FilePath) : IResourceAnnotation;

public static class VllmBuilderExtensions
{
    /// <summary>
    /// A vLLM engine serving <paramref name="model"/>: the <c>vllm/vllm-openai</c> container when a container runtime
    /// and an NVIDIA GPU are present, else a <c>vllm</c> executable on PATH, else EngineSim with the same options.
    /// </summary>
    public static IResourceBuilder<VllmResource> AddVllm(this DistributedApplicationBuilder builder, string name, IResourceBuilder<ParameterResource> model, string? engineSimProjectPath = null)
    {
        var resource = new VllmResource(name, model.Resource, engineSimProjectPath ?? builder.ProjectPath("VllmStack.EngineSim"), builder.BuildConfiguration);
        return builder.AddResource(resource)
            .WithHttpEndpoint()
            .WithHttpHealthCheck("/health")
            .WithAnnotation(new LaunchAnnotation(resource.Launch));
    }

    public static IResourceBuilder<VllmResource> WithEngineOptions(this IResourceBuilder<VllmResource> builder, Action<VllmEngineOptions> configure)
    {
        configure(builder.Resource.Options);
        return builder;
    }

    /// <summary>
    /// Joins the KV-cache network: engines report their KV blocks to <paramref name="cacheServer"/> (and start after it is
    /// healthy). Simulated engines take it as <c>--kv-cache-server</c>; a real vLLM needs LMCache configured for this.
    /// </summary>
    public static IResourceBuilder<VllmResource> WithKvCacheServer(this IResourceBuilder<VllmResource> builder, IResourceBuilder<IResource> cacheServer)
    {
        builder.Resource.KvCacheServer = cacheServer.Resource;
        return builder.WaitFor(cacheServer);
    }

    /// <summary>
    /// Engines require <paramref name="apiKey"/> on <c>/v1</c> (vLLM's <c>VLLM_API_KEY</c>); routers given these engines
    /// with <see cref="WithEngines{T}"/> send it. An empty value means no key.
    /// </summary>
    public static IResourceBuilder<VllmResource> WithApiKey(this IResourceBuilder<VllmResource> builder, IResourceBuilder<ParameterResource> apiKey)
    {
        builder.Resource.ApiKey = apiKey.Resource;
        return builder.WithEnvironment("VLLM_API_KEY", apiKey);
    }

    /// <summary>The Hugging Face token for gated models (<c>HF_TOKEN</c>); an empty value means none.</summary>
    public static IResourceBuilder<VllmResource> WithHuggingFaceToken(this IResourceBuilder<VllmResource> builder, IResourceBuilder<ParameterResource> token) =>
        builder.WithEnvironment("HF_TOKEN", token);

    /// <summary>Forces a mode (tests use <see cref="EngineMode.Simulated"/> everywhere).</summary>
    public static IResourceBuilder<VllmResource> WithMode(this IResourceBuilder<VllmResource> builder, EngineMode mode)
    {
        builder.Resource.ForcedMode = mode;
        return builder;
    }

    /// <summary>
    /// Routes to every replica of <paramref name="engines"/>, also those added or removed while running. Locally the host keeps a
    /// dynamic config file current and the router re-reads it within a second; on Kubernetes the router watches the engine
    /// pods by their labels (and its service account may list and watch pods).
    /// </summary>
    public static IResourceBuilder<T> WithEngines<T>(this IResourceBuilder<T> router, IResourceBuilder<VllmResource> engines) where T : IResource
    {
        if (engines.Resource.ApiKey is { } key)
        {
            router.WithEnvironment("Router__Forwarding__EngineApiKey", context => context.Runtime.ParameterValue(key));
        }
        if (router.ApplicationBuilder.ExecutionContext.IsPublishMode)
        {
            return router
                .WithAnnotation(new KubernetesAccessAnnotation("", "pods", ["get", "list", "watch"]))
                .WithArgs("--service-discovery", "k8s", "--k8s-label-selector", KubernetesLabels.Selector(engines.Resource),
                    "--k8s-port", KubernetesLabels.ContainerPort(engines.Resource, "http").ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        var file = Path.Combine(router.ApplicationBuilder.Options.StateDirectory, $"{router.Resource.Name}-engines.json");
        return router
            .WithAnnotation(new EngineListAnnotation(engines.Resource, file))
            .WithArgs("--dynamic-config-json", file);
    }
}
