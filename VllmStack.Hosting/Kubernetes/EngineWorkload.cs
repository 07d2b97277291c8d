using System.Globalization;
using VllmStack.Hosting.Vllm;
using static VllmStack.Hosting.Kubernetes.Manifest;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// A vLLM engine group: <c>vllm serve</c> on GPUs, a shared Hugging Face cache volume, an in-memory <c>/dev/shm</c>,
/// probes with a startup budget for loading weights, the token and API key from the Secret, a Service and a budget.
/// </summary>
internal static class EngineWorkload
{
    /// <summary>Where the engines' Hugging Face cache volume is mounted (<c>HF_HOME</c>).</summary>
    public const string HuggingFaceHome = "/data/huggingface";

    private const int StartupProbePeriodSeconds = 10;

    /// <summary>
    /// What a pod runs after <c>vllm serve</c>, before translation: the model (a parameter), host and port, then the
    /// options' arguments.
    /// </summary>
    public static IEnumerable<object> Arguments(VllmResource engine) =>
        [engine.Model, "--host", "0.0.0.0", "--port", KubernetesLabels.EnginePort.ToString(CultureInfo.InvariantCulture), .. engine.ServeOptions()];

    /// <summary>The engine's environment before translation: the model cache, and the group's variables (token, key, runtime LoRA).</summary>
    public static IEnumerable<KeyValuePair<string, object>> Environment(VllmResource engine) =>
        [new("HF_HOME", HuggingFaceHome), .. engine.ReplicaEnvironment()];

    public static IEnumerable<Dictionary<string, object?>> Objects(VllmResource engine, PublishedResource published, string? storageClass)
    {
        var name = engine.Name;
        var options = engine.Options;
        var cache = name + "-hf-cache";
        // Every replica loads the same weights: one ReadWriteMany volume downloads them once for all.
        yield return Object("v1", "PersistentVolumeClaim", cache, KubernetesLabels.Labels(engine), ("spec", Map(
            ("accessModes", List("ReadWriteMany")),
            ("storageClassName", storageClass),
            ("resources", Map(("requests", Map(("storage", $"{Invariant(options.HuggingFaceCacheGiB)}Gi"))))))));
        var memory = $"{Invariant(options.MemoryGiB)}Gi";
        var gpus = Invariant(options.GpuCount);
        var container = Map(
            ("name", "vllm"),
            ("image", $"vllm/vllm-openai:{options.ImageTag}"),
            ("imagePullPolicy", "IfNotPresent"),
            ("command", List("vllm", "serve")),
            ("args", published.Args.Cast<object>().ToList()),
            ("envFrom", published.EnvFrom),
            ("env", published.Env),
            ("ports", WorkloadObjects.ContainerPorts(engine)),
            ("startupProbe", HttpProbe("/health", StartupProbePeriodSeconds, (int)Math.Ceiling(options.StartupBudget.TotalSeconds / StartupProbePeriodSeconds))),
            ("readinessProbe", HttpProbe("/health", periodSeconds: 5, failureThreshold: 3)),
            ("livenessProbe", HttpProbe("/health", periodSeconds: 10, failureThreshold: 6, timeoutSeconds: 5)),
            ("resources", Map(
                ("requests", Map(("cpu", Invariant(options.CpuCores)), ("memory", memory), ("nvidia.com/gpu", gpus))),
                ("limits", Map(("memory", memory), ("nvidia.com/gpu", gpus))))),
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
        yield return WorkloadObjects.Deployment(engine, published.Replicas, pod,
            Map(("type", "RollingUpdate"), ("rollingUpdate", Map(("maxSurge", 0), ("maxUnavailable", 1)))));
        yield return WorkloadObjects.Service(engine);
        yield return WorkloadObjects.DisruptionBudget(engine);
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
