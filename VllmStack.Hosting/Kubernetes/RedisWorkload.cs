using Aspire.Hosting.ApplicationModel;
using static VllmStack.Hosting.Kubernetes.Manifest;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// Aspire's Redis (<c>AddRedis</c>) as a one-replica StatefulSet with a stable name and its Service, running the
/// container the model declares (image, entry point, arguments, environment — the password from the Secret), in memory
/// like the local one.
/// </summary>
internal static class RedisWorkload
{
    // The "redis" user of the official Redis image.
    private const long RedisUser = 999;

    /// <summary>
    /// The model's arguments, with snapshots turned off when the model asks for none: Aspire runs
    /// <c>/bin/sh -c "redis-server --requirepass $REDIS_PASSWORD"</c>, whose default snapshots would fork a pool of
    /// gigabytes under write load (and could exceed the memory limit) to save a cache that lives in an emptyDir anyway.
    /// </summary>
    public static IReadOnlyList<string> InMemory(IReadOnlyList<string> args) =>
        args is ["-c", var script] && script.StartsWith("redis-server", StringComparison.Ordinal) && !script.Contains("--save", StringComparison.Ordinal)
            ? ["-c", script + " --save '' --appendonly no"]
            : args;

    /// <summary>The image the model names, e.g. <c>docker.io/library/redis:8.2</c>.</summary>
    public static string Image(ContainerResource redis)
    {
        var image = redis.Annotations.OfType<ContainerImageAnnotation>().LastOrDefault()
            ?? throw new KubernetesPublishException($"Container '{redis.Name}' names no image.");
        var name = image.Registry is { Length: > 0 } registry ? $"{registry}/{image.Image}" : image.Image;
        return image.SHA256 is { Length: > 0 } digest ? $"{name}@sha256:{digest}" : $"{name}:{image.Tag ?? "latest"}";
    }

    public static IEnumerable<Dictionary<string, object?>> Objects(RedisResource redis, PublishedResource published)
    {
        var name = redis.Name;
        var port = KubernetesLabels.ContainerPorts(redis)[0].Name;
        Dictionary<string, object?> Probe(int period, int failures) =>
            Map(("tcpSocket", Map(("port", port))), ("periodSeconds", period), ("failureThreshold", failures));
        var container = Map(
            ("name", "redis"),
            ("image", Image(redis)),
            ("imagePullPolicy", "IfNotPresent"),
            ("command", redis.Entrypoint is { Length: > 0 } entrypoint ? List(entrypoint) : null),
            ("args", published.Args.Cast<object>().ToList()),
            ("envFrom", published.EnvFrom),
            ("env", published.Env),
            ("ports", WorkloadObjects.ContainerPorts(redis)),
            ("readinessProbe", Probe(5, 3)),
            ("livenessProbe", Probe(10, 3)),
            ("resources", Map(("requests", Map(("cpu", "250m"), ("memory", "1536Mi"))), ("limits", Map(("memory", "2Gi"))))),
            ("securityContext", WorkloadObjects.RestrictedContainer()),
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
        yield return WorkloadObjects.Service(redis);
    }
}
