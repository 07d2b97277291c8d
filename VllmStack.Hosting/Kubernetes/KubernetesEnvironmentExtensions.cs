using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>The Kubernetes cluster the application is published to (named after Aspire.Hosting.Kubernetes's resource).</summary>
public sealed class KubernetesEnvironmentResource(string name) : Resource(name);

public static class KubernetesEnvironmentExtensions
{
    public static IResourceBuilder<KubernetesEnvironmentResource> AddKubernetesEnvironment(this IDistributedApplicationBuilder builder, string name) =>
        builder.AddResource(new KubernetesEnvironmentResource(name)).ExcludeFromManifest();
}
