using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Builder;

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

    /// <summary>Forces a mode (tests use <see cref="EngineMode.Simulated"/> everywhere).</summary>
    public static IResourceBuilder<VllmResource> WithMode(this IResourceBuilder<VllmResource> builder, EngineMode mode)
    {
        builder.Resource.ForcedMode = mode;
        return builder;
    }

    /// <summary>
    /// Routes to every replica of <paramref name="engines"/>, also those added or removed while running: the host keeps a
    /// dynamic config file current and the router re-reads it within a second.
    /// </summary>
    public static IResourceBuilder<T> WithEngines<T>(this IResourceBuilder<T> router, IResourceBuilder<VllmResource> engines) where T : IResource
    {
        var file = Path.Combine(router.ApplicationBuilder.Options.StateDirectory, $"{router.Resource.Name}-engines.json");
        return router
            .WithAnnotation(new EngineListAnnotation(engines.Resource, file))
            .WithArgs("--dynamic-config-json", file);
    }
}
