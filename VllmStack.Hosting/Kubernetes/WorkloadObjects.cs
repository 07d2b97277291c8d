using Aspire.Hosting.ApplicationModel;
using static VllmStack.Hosting.Kubernetes.Manifest;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>The objects every kind of workload shares: Deployment, Service, disruption budget, RBAC, ServiceMonitor, ports.</summary>
internal static class WorkloadObjects
{
    /// <summary>No privilege escalation, a read-only root filesystem, no capabilities.</summary>
    public static Dictionary<string, object?> RestrictedContainer() => Map(
        ("allowPrivilegeEscalation", false),
        ("readOnlyRootFilesystem", true),
        ("capabilities", Map(("drop", List("ALL")))));

    /// <summary>The container's named TCP ports (<see cref="KubernetesLabels.ContainerPorts"/>).</summary>
    public static List<object> ContainerPorts(IResource resource) =>
        [.. KubernetesLabels.ContainerPorts(resource).Select(p => Map(("name", p.Name), ("containerPort", p.Port), ("protocol", "TCP")))];

    public static Dictionary<string, object?> Deployment(IResource resource, int replicas, Dictionary<string, object?> pod, Dictionary<string, object?> strategy) =>
        Object("apps/v1", "Deployment", resource.Name, KubernetesLabels.Labels(resource), ("spec", Map(
            ("replicas", replicas),
            ("revisionHistoryLimit", 5),
            ("strategy", strategy),
            ("selector", Map(("matchLabels", KubernetesLabels.SelectorLabels(resource)))),
            ("template", Map(("metadata", Map(("labels", KubernetesLabels.Labels(resource)))), ("spec", pod))))));

    /// <summary>A ClusterIP Service named after the resource, each port on the container port's number.</summary>
    public static Dictionary<string, object?> Service(IResource resource) =>
        Object("v1", "Service", resource.Name, KubernetesLabels.Labels(resource), ("spec", Map(
            ("type", "ClusterIP"),
            ("selector", KubernetesLabels.SelectorLabels(resource)),
            ("ports", KubernetesLabels.ContainerPorts(resource).Select(p => (object)Map(
                ("name", p.Name),
                ("port", p.Port),
                ("targetPort", p.Name),
                ("protocol", "TCP"))).ToList()))));

    /// <summary>Voluntary disruptions (node drains, upgrades) take one pod at a time.</summary>
    public static Dictionary<string, object?> DisruptionBudget(IResource resource) =>
        Object("policy/v1", "PodDisruptionBudget", resource.Name, KubernetesLabels.Labels(resource), ("spec", Map(
            ("maxUnavailable", 1),
            ("selector", Map(("matchLabels", KubernetesLabels.SelectorLabels(resource)))))));

    /// <summary>A Role with exactly the rules the resource declared, bound to its ServiceAccount.</summary>
    public static IEnumerable<Dictionary<string, object?>> Rbac(IResource resource, IReadOnlyList<KubernetesAccessAnnotation> access)
    {
        var labels = KubernetesLabels.Labels(resource);
        yield return Object("rbac.authorization.k8s.io/v1", "Role", resource.Name, labels, ("rules", access.Select(a => (object)Map(
            ("apiGroups", List(a.ApiGroup)),
            ("resources", List(a.Resource)),
            ("resourceNames", a.ResourceNames is { Count: > 0 } names ? names.Cast<object>().ToList() : null),
            ("verbs", a.Verbs.Cast<object>().ToList()))).ToList()));
        yield return Object("rbac.authorization.k8s.io/v1", "RoleBinding", resource.Name, labels,
            ("roleRef", Map(("apiGroup", "rbac.authorization.k8s.io"), ("kind", "Role"), ("name", resource.Name))),
            ("subjects", List(Map(("kind", "ServiceAccount"), ("name", resource.Name)))));
    }

    /// <summary>A Prometheus Operator ServiceMonitor: <c>/metrics</c> of every pod behind the resource's Service, every 15 s.</summary>
    public static Dictionary<string, object?> ServiceMonitor(IResource resource) =>
        Object("monitoring.coreos.com/v1", "ServiceMonitor", resource.Name, KubernetesLabels.Labels(resource), ("spec", Map(
            ("selector", Map(("matchLabels", KubernetesLabels.SelectorLabels(resource)))),
            ("endpoints", List(Map(("port", "http"), ("path", "/metrics"), ("interval", "15s")))))));
}
