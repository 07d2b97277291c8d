using System.Reflection;
using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Builder;

namespace VllmStack.Hosting.Redis;

public static class RedisBuilderExtensions
{
    // The key prefix under which the AppHost's build records its projects' paths (see DistributedApplicationBuilder.ProjectPath).
    private const string ProjectMetadataPrefix = "vllmstack:project:";

    /// <summary>
    /// A Redis server others reach through <c>ConnectionStrings__name</c> (<c>127.0.0.1:port</c>): <c>redis-server</c> on PATH,
    /// else the Garnet dotnet tool of the repository's tool manifest, else the <c>redis:7</c> container.
    /// Healthy once it answers PING. <paramref name="port"/> fixes its port (else one is allocated).
    /// </summary>
    public static IResourceBuilder<RedisResource> AddRedis(this DistributedApplicationBuilder builder, string name, int? port = null)
    {
        var resource = new RedisResource(name, DotnetToolManifest.FindDirectory(ToolManifestSearchStarts(builder)));
        return builder.AddResource(resource)
            .WithAnnotation(new EndpointAnnotation(RedisResource.EndpointName, "tcp", port))
            .WithAnnotation(new CustomHealthCheckAnnotation(resource.CheckHealthAsync))
            .WithAnnotation(new LaunchAnnotation(resource.Launch));
    }

    /// <summary>Requires <paramref name="password"/> (<c>AUTH</c>); the connection string then ends in <c>,password=…</c>.</summary>
    public static IResourceBuilder<RedisResource> WithPassword(this IResourceBuilder<RedisResource> builder, IResourceBuilder<ParameterResource> password)
    {
        builder.Resource.Password = password.Resource;
        return builder;
    }

    /// <summary>Forces a mode instead of detecting one (tests run Garnet where redis-server is installed too).</summary>
    public static IResourceBuilder<RedisResource> WithMode(this IResourceBuilder<RedisResource> builder, RedisMode mode)
    {
        builder.Resource.ForcedMode = mode;
        return builder;
    }

    /// <summary>
    /// Where to look for the tool manifest: the AppHost's recorded project paths lie inside the repository wherever the
    /// AppHost runs from; its own location and the current folder are the fallbacks.
    /// </summary>
    private static IEnumerable<string> ToolManifestSearchStarts(DistributedApplicationBuilder builder)
    {
        foreach (var metadata in builder.AppHostAssembly.GetCustomAttributes<AssemblyMetadataAttribute>())
        {
            if (metadata.Key.StartsWith(ProjectMetadataPrefix, StringComparison.Ordinal) && metadata.Value is { Length: > 0 } path)
            {
                yield return path;
            }
        }
        if (builder.AppHostAssembly.Location is { Length: > 0 } location)
        {
            yield return location;
        }
        yield return Environment.CurrentDirectory;
    }
}
