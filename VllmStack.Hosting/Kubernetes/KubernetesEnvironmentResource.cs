using Aspire.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// The Kubernetes cluster the application is published to (named after Aspire.Hosting.Kubernetes's resource, which is
/// not served here). Publishing writes the model as kustomize-ready manifests; in run mode the resource is not part of
/// the model.
/// </summary>
public sealed class KubernetesEnvironmentResource(string name) : Resource(name)
{
    /// <summary>What the manifests point at; configuration (<see cref="KubernetesPublishOptions.Section"/>) overrides it when publishing.</summary>
    public KubernetesPublishOptions Options { get; } = new();
}
