using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using VllmStack.Hosting.Common;

namespace VllmStack.Hosting.CacheServer;

public static class CacheServerBuilderExtensions
{
    /// <summary>
    /// The KV cache server (<typeparamref name="TProject"/>: <c>Projects.VllmStack_CacheServer</c>) over
    /// <paramref name="redis"/> — its index of which engine holds which KV block and its pool of KV chunks — starting
    /// once Redis is healthy; healthy itself when its <c>/health</c> answers.
    /// </summary>
    public static IResourceBuilder<ProjectResource> AddKvCacheServer<TProject>(this IDistributedApplicationBuilder builder, string name,
        IResourceBuilder<IResourceWithConnectionString> redis) where TProject : IProjectMetadata, new()
    {
        var cacheServer = builder.AddServiceProject<TProject>(name)
            .WithHttpEndpoint(name: "http")
            .WithHttpHealthCheck("/health")
            .WithReference(redis);
        // A Redis that runs with the stack is waited for; an external one (a connection string) is the user's to run.
        return redis.Resource is ConnectionStringResource ? cacheServer : cacheServer.WaitFor(redis);
    }
}
