using VllmStack.Hosting.Orchestration;

namespace VllmStack.Hosting.ApplicationModel;

/// <summary>A network endpoint. <see cref="Port"/> fixes the port (single replica only); otherwise one is allocated per replica.</summary>
public sealed record EndpointAnnotation(string Name, string Scheme = "http", int? Port = null, string? PortEnvironmentVariable = null) : IResourceAnnotation;

/// <summary>Environment variables computed when a replica starts (ports and references are known then).</summary>
public sealed record EnvironmentAnnotation(Func<ReplicaContext, IEnumerable<KeyValuePair<string, string>>> Values) : IResourceAnnotation;

/// <summary>Command-line arguments computed when a replica starts.</summary>
public sealed record ArgsAnnotation(Func<ReplicaContext, IEnumerable<string>> Values) : IResourceAnnotation;

/// <summary>Do not start before <paramref name="Resource"/> is healthy (or at least running, without a health check).</summary>
public sealed record WaitAnnotation(IResource Resource) : IResourceAnnotation;

/// <summary>Environment from another resource: its endpoints (<c>services__</c>) or connection string.</summary>
public sealed record ReferenceAnnotation(IResource Resource) : IResourceAnnotation;

public sealed record ReplicasAnnotation(int Count) : IResourceAnnotation;

/// <summary>
/// The resource is given the AppHost control API's URL (scale, start, stop) in <paramref name="EnvironmentVariable"/>;
/// the host then runs the control API even without a dashboard, on a free loopback port.
/// </summary>
public sealed record ControlApiAnnotation(string EnvironmentVariable) : IResourceAnnotation;

/// <summary>Healthy when GET <paramref name="Path"/> on the endpoint answers 2xx.</summary>
public sealed record HttpHealthCheckAnnotation(string Path = "/health", string EndpointName = "http") : IResourceAnnotation;

/// <summary>A health check of another kind (e.g. a Redis PING), run against one replica.</summary>
public sealed record CustomHealthCheckAnnotation(Func<ReplicaContext, CancellationToken, Task<bool>> Check) : IResourceAnnotation;

/// <summary>Where the resource's own project lives, for the publisher and for building container images.</summary>
public sealed record ProjectAnnotation(string ProjectPath) : IResourceAnnotation;

/// <summary>What a replica's run looks like, decided when it starts (the command, its working directory).</summary>
public sealed record LaunchAnnotation(Func<ReplicaContext, LaunchSpec> Resolve) : IResourceAnnotation;

public sealed record LaunchSpec(string FileName, IReadOnlyList<string> Arguments, string? WorkingDirectory = null, string? Description = null);

/// <summary>Context of one replica while it is being started.</summary>
public sealed class ReplicaContext(IResource resource, int replica, IReadOnlyDictionary<string, int> ports, ResourceRuntime runtime)
{
    public IResource Resource { get; } = resource;

    public int Replica { get; } = replica;

    /// <summary>Allocated port per endpoint name.</summary>
    public IReadOnlyDictionary<string, int> Ports { get; } = ports;

    public ResourceRuntime Runtime { get; } = runtime;

    public int Port(string endpoint = "http") => Ports.TryGetValue(endpoint, out var port)
        ? port
        : throw new InvalidOperationException($"Resource '{Resource.Name}' has no endpoint '{endpoint}'.");

    public Uri Url(string endpoint = "http") =>
        new($"{Resource.Annotations.OfType<EndpointAnnotation>().First(e => e.Name == endpoint).Scheme ?? "http"}://127.0.0.1:{Port(endpoint)}");
}
