using Aspire.Hosting.ApplicationModel;
using static VllmStack.Hosting.Kubernetes.Manifest;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// One of our .NET services (a project of the model): a Deployment fed by its ConfigMap, a Service, a ServiceAccount
/// (with a Role when it needs the Kubernetes API), and a disruption budget.
/// </summary>
internal static class ServiceWorkload
{
    // The .NET images' non-root "app" user; set by number so that the kubelet can check runAsNonRoot.
    private const long DotnetAppUser = 1654;

    private static readonly ComputeResourcesAnnotation DefaultCompute = new("250m", "256Mi", "1Gi");

    public static IEnumerable<Dictionary<string, object?>> Objects(PublishedResource published, string image)
    {
        var resource = published.Resource;
        var name = resource.Name;
        var access = resource.Annotations.OfType<KubernetesAccessAnnotation>()
            .Concat(published.ConfigFiles.Where(f => f.Verbs.Count > 0).Select(f => new KubernetesAccessAnnotation("", "configmaps", f.Verbs, [f.ConfigMapName])))
            .ToList();
        var single = resource.Annotations.OfType<SingleInstanceAnnotation>().Any();
        var compute = resource.Annotations.OfType<ComputeResourcesAnnotation>().LastOrDefault() ?? DefaultCompute;
        var ports = WorkloadObjects.ContainerPorts(resource);

        yield return Object("v1", "ServiceAccount", name, KubernetesLabels.Labels(resource), ("automountServiceAccountToken", access.Count > 0));
        if (access.Count > 0)
        {
            foreach (var rbac in WorkloadObjects.Rbac(resource, access))
            {
                yield return rbac;
            }
        }
        var container = Map(
            ("name", name),
            ("image", image),
            ("imagePullPolicy", "IfNotPresent"),
            ("args", published.Args.Count > 0 ? published.Args.Cast<object>().ToList() : null),
            ("envFrom", published.EnvFrom),
            ("env", published.Env),
            ("ports", ports.Count > 0 ? ports : null),
            ("startupProbe", ports.Count > 0 ? HttpProbe("/alive", periodSeconds: 2, failureThreshold: 30) : null),
            ("readinessProbe", resource.Annotations.OfType<HealthCheckAnnotation>().Any() ? HttpProbe("/health", periodSeconds: 5, failureThreshold: 3) : null),
            ("livenessProbe", ports.Count > 0 ? HttpProbe("/alive", periodSeconds: 10, failureThreshold: 3) : null),
            ("resources", Map(
                ("requests", Map(("cpu", compute.CpuRequest), ("memory", compute.MemoryRequest))),
                ("limits", Map(("memory", compute.MemoryLimit))))),
            ("securityContext", WorkloadObjects.RestrictedContainer()),
            ("volumeMounts", List([Mount("tmp", "/tmp"), .. published.ConfigFiles.Select(f => ReadOnlyMount(f.ConfigMapName, f.MountDirectory))])));
        // Pods leave a Service's endpoints before they stop taking requests: a short pause lets routers and proxies catch up.
        if (!single)
        {
            container["lifecycle"] = Map(("preStop", Map(("sleep", Map(("seconds", 5))))));
        }
        var pod = Map(
            ("serviceAccountName", name),
            ("automountServiceAccountToken", access.Count > 0),
            ("securityContext", Map(
                ("runAsNonRoot", true), ("runAsUser", DotnetAppUser), ("runAsGroup", DotnetAppUser), ("fsGroup", DotnetAppUser),
                ("seccompProfile", Map(("type", "RuntimeDefault"))))),
            ("terminationGracePeriodSeconds", 30),
            ("containers", List(container)),
            ("volumes", List([EmptyDir("tmp"), .. published.ConfigFiles.Select(f => Map(("name", f.ConfigMapName), ("configMap", Map(("name", f.ConfigMapName)))))])));
        // One autoscaler at a time: the old pod goes before the new one starts.
        yield return WorkloadObjects.Deployment(resource, single ? 1 : published.Replicas, pod,
            single ? Map(("type", "Recreate")) : Map(("type", "RollingUpdate"), ("rollingUpdate", Map(("maxSurge", 1), ("maxUnavailable", 0)))));
        if (ports.Count > 0)
        {
            yield return WorkloadObjects.Service(resource);
        }
        if (!single)
        {
            yield return WorkloadObjects.DisruptionBudget(resource);
        }
    }
}
