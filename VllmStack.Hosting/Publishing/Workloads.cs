using System.Globalization;
using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Redis;
using VllmStack.Hosting.Vllm;
using static VllmStack.Hosting.Publishing.Manifest;

namespace VllmStack.Hosting.Publishing;

/// <summary>A resource evaluated in the publisher's view: its arguments and environment with Service addresses and parameter references.</summary>
internal sealed record PublishedResource(IResource Resource, int Replicas, IReadOnlyList<string> Args, PodEnvironment Environment);

/// <summary>The Kubernetes objects of each kind of resource: Deployments, StatefulSet, Services, RBAC, disruption budgets, volumes.</summary>
internal static class Workloads
{
    // The .NET images' non-root "app" user; set by number so that runAsNonRoot can be checked by the kubelet.
    private const long DotnetAppUser = 1654;
    // The "redis" user of the official Redis image.
    private const long RedisUser = 999;

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>One of our .NET services: ConfigMap-fed Deployment, Service, ServiceAccount (with a Role when it needs the API), budget.</summary>
    public static IEnumerable<Dictionary<string, object?>> Service(PublishedResource published, string image)
    {
        var resource = published.Resource;
        var name = resource.Name;
        var labels = KubernetesLabels.Labels(resource);
        var access = resource.Annotations.OfType<KubernetesAccessAnnotation>().ToList();
        var single = resource.Annotations.OfType<SingleInstanceAnnotation>().Any();
        var compute = resource.Annotations.OfType<ComputeResourcesAnnotation>().LastOrDefault() ?? new ComputeResourcesAnnotation("250m", "256Mi", "1Gi");
        var ports = ContainerPorts(resource);

        yield return Object("v1", "ServiceAccount", name, labels, ("automountServiceAccountToken", access.Count > 0));
        if (access.Count > 0)
        {
            foreach (var rbac in Rbac(resource, access))
            {
                yield return rbac;
            }
        }
        var container = Map(
            ("name", name),
            ("image", image),
            ("imagePullPolicy", "IfNotPresent"),
            ("args", published.Args.Count > 0 ? published.Args.Cast<object>().ToList() : null),
            ("envFrom", List(Map(("configMapRef", Map(("name", ConfigMapName(resource))))))),
            ("env", published.Environment.Env.Count > 0 ? published.Environment.Env : null),
            ("ports", ports.Count > 0 ? ports : null),
            ("startupProbe", ports.Count > 0 ? HttpProbe("/alive", periodSeconds: 2, failureThreshold: 30) : null),
            ("readinessProbe", HasHealthCheck(resource) ? HttpProbe("/health", periodSeconds: 5, failureThreshold: 3) : null),
            ("livenessProbe", ports.Count > 0 ? HttpProbe("/alive", periodSeconds: 10, failureThreshold: 3) : null),
            ("resources", Map(
                ("requests", Map(("cpu", compute.CpuRequest), ("memory", compute.MemoryRequest))),
                ("limits", Map(("memory", compute.MemoryLimit))))),
            ("securityContext", RestrictedContainer()),
            ("volumeMounts", List(Mount("tmp", "/tmp"))));
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
            ("volumes", List(EmptyDir("tmp"))));
        yield return Deployment(resource, single ? 1 : published.Replicas, pod,
            single ? Map(("type", "Recreate")) : Map(("type", "RollingUpdate"), ("rollingUpdate", Map(("maxSurge", 1), ("maxUnavailable", 0)))));
        if (ports.Count > 0)
        {
            yield return Service(resource);
        }
        if (!single)
        {
            yield return DisruptionBudget(resource);
        }
    }

    /// <summary>
    /// A vLLM engine: <c>vllm serve</c> with the model's arguments on GPUs, a shared Hugging Face cache volume, an in-memory
    /// /dev/shm, probes with a startup budget for loading weights, the token and API key from the Secret, and a Service.
    /// </summary>
    public static IEnumerable<Dictionary<string, object?>> Engine(VllmResource engine, PublishedResource published, string? storageClass)
    {
        var name = engine.Name;
        var options = engine.Options;
        var labels = KubernetesLabels.Labels(engine);
        var cache = name + "-hf-cache";
        // Every replica loads the same weights: one ReadWriteMany volume downloads them once for all.
        yield return Object("v1", "PersistentVolumeClaim", cache, labels, ("spec", Map(
            ("accessModes", List("ReadWriteMany")),
            ("storageClassName", storageClass),
            ("resources", Map(("requests", Map(("storage", $"{Invariant(options.HuggingFaceCacheGiB)}Gi"))))))));
        var startupPeriod = 10;
        var container = Map(
            ("name", "vllm"),
            ("image", $"vllm/vllm-openai:{options.ImageTag}"),
            ("imagePullPolicy", "IfNotPresent"),
            ("command", List("vllm", "serve")),
            ("args", published.Args.Cast<object>().ToList()),
            ("envFrom", List(Map(("configMapRef", Map(("name", ConfigMapName(engine))))))),
            ("env", published.Environment.Env.Count > 0 ? published.Environment.Env : null),
            ("ports", ContainerPorts(engine)),
            ("startupProbe", HttpProbe("/health", startupPeriod, (int)Math.Ceiling(options.StartupBudget.TotalSeconds / startupPeriod))),
            ("readinessProbe", HttpProbe("/health", periodSeconds: 5, failureThreshold: 3)),
            ("livenessProbe", HttpProbe("/health", periodSeconds: 10, failureThreshold: 6, timeoutSeconds: 5)),
            ("resources", Map(
                ("requests", Map(("cpu", Invariant(options.CpuCores)), ("memory", $"{Invariant(options.MemoryGiB)}Gi"), ("nvidia.com/gpu", Invariant(options.GpuCount)))),
                ("limits", Map(("memory", $"{Invariant(options.MemoryGiB)}Gi"), ("nvidia.com/gpu", Invariant(options.GpuCount)))))),
            ("securityContext", Map(("allowPrivilegeEscalation", false))),
            // The router watches pods and drops one as soon as it is terminating; the pause lets that land before vLLM stops.
            ("lifecycle", Map(("preStop", Map(("sleep", Map(("seconds", 10))))))),
            ("volumeMounts", List(Mount("hf-cache", HuggingFaceHome), Mount("dshm", "/dev/shm"))));
        var pod = Map(
            ("automountServiceAccountToken", false),
            ("securityContext", Map(("seccompProfile", Map(("type", "RuntimeDefault"))))),
            ("terminationGracePeriodSeconds", 60),
            // GPU node pools are commonly tainted so that only GPU work lands there.
            ("tolerations", List(Map(("key", "nvidia.com/gpu"), ("operator", "Exists"), ("effect", "NoSchedule")))),
            ("containers", List(container)),
            ("volumes", List(
                Map(("name", "hf-cache"), ("persistentVolumeClaim", Map(("claimName", cache)))),
                EmptyDir("dshm", "Memory", $"{Invariant(options.SharedMemoryGiB)}Gi"))));
        // No surge: a rollout must not need a spare GPU.
        yield return Deployment(engine, published.Replicas, pod, Map(("type", "RollingUpdate"), ("rollingUpdate", Map(("maxSurge", 0), ("maxUnavailable", 1)))));
        yield return Service(engine);
        yield return DisruptionBudget(engine);
    }

    /// <summary>Where the engines' Hugging Face cache volume is mounted (<c>HF_HOME</c>).</summary>
    public const string HuggingFaceHome = "/data/huggingface";

    /// <summary>
    /// <c>redis-server</c>'s arguments: in memory, like the local one; the password (a parameter reference) when the model
    /// sets one, else reachable without one from inside the cluster.
    /// </summary>
    public static IReadOnlyList<string> RedisArguments(RedisResource redis) =>
        ["--save", "", "--appendonly", "no", .. redis.Password is { } password ? ["--requirepass", ParameterReference.Of(password)] : new[] { "--protected-mode", "no" }];

    /// <summary>An in-memory Redis (no snapshots, like the local one) as a one-replica StatefulSet with a stable name, and its Service.</summary>
    public static IEnumerable<Dictionary<string, object?>> Redis(RedisResource redis, PublishedResource published)
    {
        var name = redis.Name;
        var probe = (int period, int failures) => Map(("tcpSocket", Map(("port", RedisResource.EndpointName))), ("periodSeconds", period), ("failureThreshold", failures));
        var container = Map(
            ("name", "redis"),
            ("image", RedisResource.ContainerImage),
            ("imagePullPolicy", "IfNotPresent"),
            ("args", published.Args.Cast<object>().ToList()),
            ("env", published.Environment.Env.Count > 0 ? published.Environment.Env : null),
            ("ports", ContainerPorts(redis)),
            ("readinessProbe", probe(5, 3)),
            ("livenessProbe", probe(10, 3)),
            ("resources", Map(("requests", Map(("cpu", "250m"), ("memory", "1536Mi"))), ("limits", Map(("memory", "2Gi"))))),
            ("securityContext", RestrictedContainer()),
            ("volumeMounts", List(Mount("data", "/data"))));
        var pod = Map(
            ("automountServiceAccountToken", false),
            ("securityContext", Map(("runAsNonRoot", true), ("runAsUser", RedisUser), ("runAsGroup", RedisUser), ("fsGroup", RedisUser),
                ("seccompProfile", Map(("type", "RuntimeDefault"))))),
            ("containers", List(container)),
            ("volumes", List(EmptyDir("data"))));
        yield return Object("apps/v1", "StatefulSet", name, KubernetesLabels.Labels(redis), ("spec", Map(
            ("serviceName", name),
            ("replicas", 1),
            ("selector", Map(("matchLabels", KubernetesLabels.SelectorLabels(redis)))),
            ("template", Map(("metadata", Map(("labels", KubernetesLabels.Labels(redis)))), ("spec", pod))))));
        yield return Service(redis);
    }

    public static string ConfigMapName(IResource resource) => resource.Name + "-config";

    public static bool HasHealthCheck(IResource resource) => resource.Annotations.OfType<HttpHealthCheckAnnotation>().Any();

    private static Dictionary<string, object?> RestrictedContainer() => Map(
        ("allowPrivilegeEscalation", false),
        ("readOnlyRootFilesystem", true),
        ("capabilities", Map(("drop", List("ALL")))));

    private static List<object> ContainerPorts(IResource resource) =>
        [.. resource.Annotations.OfType<EndpointAnnotation>().Select(e => Map(
            ("name", e.Name),
            ("containerPort", KubernetesLabels.ContainerPort(resource, e.Name)),
            ("protocol", "TCP")))];

    private static Dictionary<string, object?> Deployment(IResource resource, int replicas, Dictionary<string, object?> pod, Dictionary<string, object?> strategy) =>
        Object("apps/v1", "Deployment", resource.Name, KubernetesLabels.Labels(resource), ("spec", Map(
            ("replicas", replicas),
            ("revisionHistoryLimit", 5),
            ("strategy", strategy),
            ("selector", Map(("matchLabels", KubernetesLabels.SelectorLabels(resource)))),
            ("template", Map(("metadata", Map(("labels", KubernetesLabels.Labels(resource)))), ("spec", pod))))));

    private static Dictionary<string, object?> Service(IResource resource) =>
        Object("v1", "Service", resource.Name, KubernetesLabels.Labels(resource), ("spec", Map(
            ("type", "ClusterIP"),
            ("selector", KubernetesLabels.SelectorLabels(resource)),
            ("ports", resource.Annotations.OfType<EndpointAnnotation>().Select(e => (object)Map(
                ("name", e.Name),
                ("port", KubernetesLabels.ContainerPort(resource, e.Name)),
                ("targetPort", e.Name),
                ("protocol", "TCP"))).ToList()))));

    /// <summary>Voluntary disruptions (node drains, upgrades) take one pod at a time.</summary>
    private static Dictionary<string, object?> DisruptionBudget(IResource resource) =>
        Object("policy/v1", "PodDisruptionBudget", resource.Name, KubernetesLabels.Labels(resource), ("spec", Map(
            ("maxUnavailable", 1),
            ("selector", Map(("matchLabels", KubernetesLabels.SelectorLabels(resource)))))));

    /// <summary>A Role with exactly the rules the resource declared, bound to its ServiceAccount.</summary>
    private static IEnumerable<Dictionary<string, object?>> Rbac(IResource resource, IReadOnlyList<KubernetesAccessAnnotation> access)
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
}
