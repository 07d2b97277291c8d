using VllmStack.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Builder;

/// <summary>A resource being declared, in Aspire's fluent style: <c>builder.AddX(...).WithY(...)</c>.</summary>
public interface IResourceBuilder<out T> where T : IResource
{
    T Resource { get; }

    DistributedApplicationBuilder ApplicationBuilder { get; }
}

internal sealed class ResourceBuilder<T>(T resource, DistributedApplicationBuilder builder) : IResourceBuilder<T> where T : IResource
{
    public T Resource { get; } = resource;

    public DistributedApplicationBuilder ApplicationBuilder { get; } = builder;
}

public static class ResourceBuilderExtensions
{
    public static IResourceBuilder<T> WithAnnotation<T>(this IResourceBuilder<T> builder, IResourceAnnotation annotation) where T : IResource
    {
        builder.Resource.Annotations.Add(annotation);
        return builder;
    }

    /// <summary>An HTTP endpoint; <paramref name="port"/> fixes it (else one is allocated per replica); <paramref name="env"/> names the variable that carries the port.</summary>
    public static IResourceBuilder<T> WithHttpEndpoint<T>(this IResourceBuilder<T> builder, int? port = null, string name = "http", string? env = null) where T : IResource
    {
        builder.Resource.Annotations.RemoveAll(a => a is EndpointAnnotation e && e.Name == name);
        return builder.WithAnnotation(new EndpointAnnotation(name, "http", port, env));
    }

    public static IResourceBuilder<T> WithEnvironment<T>(this IResourceBuilder<T> builder, string name, string value) where T : IResource =>
        builder.WithAnnotation(new EnvironmentAnnotation(_ => [new(name, value)]));

    public static IResourceBuilder<T> WithEnvironment<T>(this IResourceBuilder<T> builder, string name, Func<ReplicaContext, string> value) where T : IResource =>
        builder.WithAnnotation(new EnvironmentAnnotation(context => [new(name, value(context))]));

    public static IResourceBuilder<T> WithEnvironment<T>(this IResourceBuilder<T> builder, string name, IResourceBuilder<ParameterResource> parameter) where T : IResource =>
        builder.WithAnnotation(new EnvironmentAnnotation(context => [new(name, context.Runtime.ParameterValue(parameter.Resource))]));

    public static IResourceBuilder<T> WithArgs<T>(this IResourceBuilder<T> builder, params string[] args) where T : IResource =>
        builder.WithAnnotation(new ArgsAnnotation(_ => args));

    public static IResourceBuilder<T> WithArgs<T>(this IResourceBuilder<T> builder, Func<ReplicaContext, IEnumerable<string>> args) where T : IResource =>
        builder.WithAnnotation(new ArgsAnnotation(args));

    /// <summary>Injects the source's endpoints (<c>services__name__scheme__N</c>) or connection string (<c>ConnectionStrings__name</c>).</summary>
    public static IResourceBuilder<T> WithReference<T>(this IResourceBuilder<T> builder, IResourceBuilder<IResource> source) where T : IResource =>
        builder.WithAnnotation(new ReferenceAnnotation(source.Resource));

    /// <summary>Starts only once <paramref name="dependency"/> is healthy (running, when it has no health check).</summary>
    public static IResourceBuilder<T> WaitFor<T>(this IResourceBuilder<T> builder, IResourceBuilder<IResource> dependency) where T : IResource =>
        builder.WithAnnotation(new WaitAnnotation(dependency.Resource));

    public static IResourceBuilder<T> WithReplicas<T>(this IResourceBuilder<T> builder, int replicas) where T : IResource
    {
        ArgumentOutOfRangeException.ThrowIfNegative(replicas);
        builder.Resource.Annotations.RemoveAll(a => a is ReplicasAnnotation);
        return builder.WithAnnotation(new ReplicasAnnotation(replicas));
    }

    public static IResourceBuilder<T> WithHttpHealthCheck<T>(this IResourceBuilder<T> builder, string path = "/health", string endpointName = "http") where T : IResource
    {
        builder.Resource.Annotations.RemoveAll(a => a is HttpHealthCheckAnnotation);
        return builder.WithAnnotation(new HttpHealthCheckAnnotation(path, endpointName));
    }

    public static int Replicas(this IResource resource) => resource.Annotations.OfType<ReplicasAnnotation>().LastOrDefault()?.Count ?? 1;
}
