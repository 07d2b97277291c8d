using Aspire.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// A Kubernetes API permission the resource needs when published: its ServiceAccount's Role gets exactly these verbs on
/// <paramref name="Resource"/> (optionally only on the named objects), nothing more.
/// </summary>
public sealed record KubernetesAccessAnnotation(string ApiGroup, string Resource, IReadOnlyList<string> Verbs, IReadOnlyList<string>? ResourceNames = null) : IResourceAnnotation;

/// <summary>
/// A file the resource's pods read from a ConfigMap of their own: <paramref name="ConfigMapName"/> (fixed, no hash suffix,
/// so the resource can find and patch it), key <paramref name="FileName"/>, mounted read-only on
/// <paramref name="MountDirectory"/> — the directory, not a subPath, so that the kubelet brings later changes of the
/// ConfigMap into running pods. <paramref name="Content"/> is read when publishing; null: no such file (nothing is
/// published). <paramref name="Verbs"/>: what the resource's ServiceAccount may do to that one ConfigMap (e.g. get and
/// patch, for a resource that writes changes back through the Kubernetes API).
/// </summary>
public sealed record KubernetesConfigFileAnnotation(string ConfigMapName, string MountDirectory, string FileName,
    Func<CancellationToken, Task<string?>> Content, IReadOnlyList<string> Verbs) : IResourceAnnotation
{
    /// <summary>Where the pods find the file.</summary>
    public string MountedPath => $"{MountDirectory.TrimEnd('/')}/{FileName}";
}

/// <summary>At most one replica may run at a time (two autoscalers would fight): one replica, replaced by recreating it.</summary>
public sealed record SingleInstanceAnnotation : IResourceAnnotation;

/// <summary>CPU and memory a published replica requests, and its memory limit (CPU is not limited: throttling adds latency).</summary>
public sealed record ComputeResourcesAnnotation(string CpuRequest, string MemoryRequest, string MemoryLimit) : IResourceAnnotation;

/// <summary>Pods of the resource when published (locally the resource keeps its own count).</summary>
public sealed record PublishedReplicasAnnotation(int Replicas) : IResourceAnnotation;

/// <summary>How a resource runs when published to Kubernetes: its pods' count and compute resources.</summary>
public static class KubernetesResourceBuilderExtensions
{
    /// <summary>Requests and memory limit of each replica when published, e.g. <c>("1", "512Mi", "2Gi")</c>.</summary>
    public static IResourceBuilder<T> WithComputeResources<T>(this IResourceBuilder<T> builder, string cpuRequest, string memoryRequest, string memoryLimit)
        where T : IResource =>
        builder.WithAnnotation(new ComputeResourcesAnnotation(cpuRequest, memoryRequest, memoryLimit), ResourceAnnotationMutationBehavior.Replace);

    /// <summary>
    /// How many pods run the resource when published to Kubernetes (locally a service with a fixed port runs once; on a
    /// cluster a Service spreads clients over its replicas).
    /// </summary>
    public static IResourceBuilder<T> WithPublishedReplicas<T>(this IResourceBuilder<T> builder, int replicas) where T : IResource =>
        builder.WithAnnotation(new PublishedReplicasAnnotation(replicas), ResourceAnnotationMutationBehavior.Replace);
}
