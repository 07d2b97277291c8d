using Aspire.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// A resource as its pods run it: <paramref name="Replicas"/> pods, the container's arguments and environment already in
/// their in-cluster form (Service addresses, parameter references), and the config files mounted into them.
/// </summary>
internal sealed record PublishedResource(IResource Resource, int Replicas, IReadOnlyList<string> Args, PodEnvironment Environment,
    IReadOnlyList<KubernetesConfigFileAnnotation> ConfigFiles)
{
    /// <summary>The resource's own ConfigMap (<c>config/NAME-config.env</c>), read by its containers with <c>envFrom</c>.</summary>
    public string ConfigMapName => Resource.Name + "-config";

    /// <summary>The container's <c>envFrom</c>: the resource's ConfigMap when it has settings, else none.</summary>
    public List<object>? EnvFrom => Environment.ConfigData.Count > 0
        ? Manifest.List(Manifest.Map(("configMapRef", Manifest.Map(("name", ConfigMapName)))))
        : null;

    /// <summary>The container's <c>env</c>, or none.</summary>
    public List<object>? Env => Environment.Env.Count > 0 ? Environment.Env : null;
}
