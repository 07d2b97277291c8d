using VllmStack.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Publishing;

/// <summary>
/// A Kubernetes API permission the resource needs when published: its ServiceAccount's Role gets exactly these verbs on
/// <paramref name="Resource"/> (optionally only on the named objects), nothing more.
/// </summary>
public sealed record KubernetesAccessAnnotation(string ApiGroup, string Resource, IReadOnlyList<string> Verbs, IReadOnlyList<string>? ResourceNames = null) : IResourceAnnotation;

/// <summary>At most one replica may run at a time (two autoscalers would fight): one replica, replaced by recreating it.</summary>
public sealed record SingleInstanceAnnotation : IResourceAnnotation;

/// <summary>CPU and memory a published replica requests, and its memory limit (CPU is not limited: throttling adds latency).</summary>
public sealed record ComputeResourcesAnnotation(string CpuRequest, string MemoryRequest, string MemoryLimit) : IResourceAnnotation;

public static class KubernetesResourceBuilderExtensions
{
    /// <summary>Requests and memory limit of each replica when published, e.g. <c>("1", "512Mi", "2Gi")</c>.</summary>
    public static Builder.IResourceBuilder<T> WithComputeResources<T>(this Builder.IResourceBuilder<T> builder, string cpuRequest, string memoryRequest, string memoryLimit)
        where T : IResource
    {
        builder.Resource.Annotations.RemoveAll(a => a is ComputeResourcesAnnotation);
        builder.Resource.Annotations.Add(new ComputeResourcesAnnotation(cpuRequest, memoryRequest, memoryLimit));
        return builder;
    }
}
