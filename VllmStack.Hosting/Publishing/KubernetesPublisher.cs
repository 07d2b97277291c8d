using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Autoscaling;
using VllmStack.Hosting.Builder;
using VllmStack.Hosting.Orchestration;
using VllmStack.Hosting.Redis;
using VllmStack.Hosting.Vllm;
using static VllmStack.Hosting.Publishing.Manifest;

namespace VllmStack.Hosting.Publishing;

/// <summary>What a publish wrote, and what the user should know about it.</summary>
public sealed record PublishResult(string OutputPath, IReadOnlyList<string> Files, IReadOnlyList<string> Images, IReadOnlyList<string> Warnings);

/// <summary>
/// Writes the application model as Kubernetes manifests that <c>kubectl apply -k</c> installs: every resource is evaluated as
/// in run mode, but in a view where endpoints are Service DNS names and parameters are references to a ConfigMap or Secret.
/// </summary>
public sealed class KubernetesPublisher(DistributedApplicationBuilder builder, KubernetesPublishOptions options)
{
    public async Task<PublishResult> PublishAsync(CancellationToken cancellationToken = default)
    {
        var runtime = ResourceRuntime.ForPublishing(builder.Configuration,
            (resource, endpoint) => new Uri($"{Scheme(resource, endpoint)}://{resource.Name}:{KubernetesLabels.ContainerPort(resource, endpoint)}"));
        var parameters = builder.Resources.OfType<ParameterResource>().ToList();
        var bundle = new ManifestBundle(options.Namespace);
        var images = new List<string>();
        var warnings = new List<string>();
        var referenced = new HashSet<ParameterResource>();

        bundle.Add("namespace.yaml", Object("v1", "Namespace", options.Namespace, new() { [KubernetesLabels.PartOfLabel] = KubernetesLabels.PartOf }));
        foreach (var resource in builder.Resources)
        {
            switch (resource)
            {
                case ParameterResource:
                    break;
                case VllmResource engine:
                {
                    var published = Evaluate(engine, runtime, parameters, extra: new() { ["HF_HOME"] = Workloads.HuggingFaceHome },
                        args: engine.ServeArguments(runtime, "0.0.0.0", KubernetesLabels.ContainerPort(engine, "http")));
                    Add(bundle, published, Workloads.Engine(engine, published, options.StorageClass));
                    referenced.UnionWith(published.Environment.Parameters);
                    break;
                }
                case RedisResource redis:
                {
                    var published = Evaluate(redis, runtime, parameters, extra: [], args: Workloads.RedisArguments(redis));
                    bundle.Add(redis.Name + ".yaml", [.. Workloads.Redis(redis, published)]);
                    referenced.UnionWith(published.Environment.Parameters);
                    break;
                }
                case ProjectResource project:
                {
                    var image = Image(project);
                    images.Add(image);
                    var published = Evaluate(project, runtime, parameters, extra: ServiceSettings(project), args: []);
                    Add(bundle, published, Workloads.Service(published, image));
                    referenced.UnionWith(published.Environment.Parameters);
                    break;
                }
                default:
                    throw new InvalidOperationException(
                        $"Resource '{resource.Name}' ({resource.GetType().Name}) cannot be published to Kubernetes: only engines, Redis, parameters and the repository's projects can.");
            }
        }

        var values = new ResourceRuntime(builder.Configuration);
        bundle.AddConfigMap(PodEnvironment.ParametersConfigMap, referenced.Where(p => !p.Secret).ToDictionary(p => p.Name, values.ParameterValue));
        foreach (var secret in referenced.Where(p => p.Secret).OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            bundle.AddSecretKey(secret.Name, secret is ConnectionStringParameterResource
                ? $"{secret.Name}: connection string of the external Redis (host:port[,password=…])"
                : $"{secret.Name}: parameter '{secret.Name}'");
        }
        var monitored = builder.Resources.Where(r => r is VllmResource or ProjectResource).ToList();
        if (options.ServiceMonitors)
        {
            bundle.Add("servicemonitors.yaml", [.. monitored.Select(Observability.ServiceMonitor)]);
        }
        bundle.AddFileConfigMap(Observability.DashboardConfigMap, Observability.DashboardFile, Observability.Dashboard(),
            new() { ["grafana_dashboard"] = "1", [KubernetesLabels.PartOfLabel] = KubernetesLabels.PartOf });
        warnings.AddRange(AutoscalerWarnings());

        var files = await bundle.WriteAsync(options.OutputPath, cancellationToken).ConfigureAwait(false);
        return new PublishResult(options.OutputPath, files, images, warnings);
    }

    private static void Add(ManifestBundle bundle, PublishedResource published, IEnumerable<Dictionary<string, object?>> objects)
    {
        bundle.Add(published.Resource.Name + ".yaml", [.. objects]);
        bundle.AddConfigMap(Workloads.ConfigMapName(published.Resource), published.Environment.ConfigData);
    }

    /// <summary>The resource's arguments and environment as the model declares them, in the publisher's view.</summary>
    private PublishedResource Evaluate(IResource resource, ResourceRuntime runtime, IReadOnlyCollection<ParameterResource> parameters,
        Dictionary<string, string> extra, IReadOnlyList<string> args)
    {
        var ports = resource.Annotations.OfType<EndpointAnnotation>().ToDictionary(e => e.Name, e => KubernetesLabels.ContainerPort(resource, e.Name));
        var context = new ReplicaContext(resource, 0, ports, runtime);
        var env = LaunchPlanner.ModelEnvironment(resource, context);
        foreach (var (key, value) in extra)
        {
            env[key] = value;
        }
        List<string> allArgs = [.. args, .. LaunchPlanner.Arguments(resource, context)];
        return new PublishedResource(resource, Replicas(resource), allArgs, PodEnvironment.Build(env, allArgs, parameters));
    }

    /// <summary>What every .NET service of ours is told in a pod: where to listen, its name in telemetry, where telemetry goes.</summary>
    private Dictionary<string, string> ServiceSettings(ProjectResource project)
    {
        var settings = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ASPNETCORE_URLS"] = $"http://+:{KubernetesLabels.ContainerPort(project, "http")}",
            ["OTEL_SERVICE_NAME"] = project.Name,
            ["OTEL_RESOURCE_ATTRIBUTES"] = $"service.instance.id=$({PodEnvironment.PodNameVariable}),service.namespace={options.Namespace}",
        };
        if (options.OtlpEndpoint is { } otlp)
        {
            settings["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.ToString().TrimEnd('/');
            settings["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf";
        }
        return settings;
    }

    /// <summary>Engines start at their declared count, kept within the autoscaler's bounds when one scales them.</summary>
    private int Replicas(IResource resource)
    {
        var replicas = resource.Replicas();
        var target = builder.Resources.SelectMany(r => r.Annotations.OfType<ScaleTargetAnnotation>()).FirstOrDefault(t => t.Engines == resource);
        if (target is not null)
        {
            replicas = Math.Max(replicas, target.Policy.MinReplicas ?? 1);
            replicas = Math.Min(replicas, target.Policy.MaxReplicas ?? replicas);
        }
        return replicas;
    }

    private string Image(ProjectResource project) =>
        $"{(options.Registry is { } registry ? registry + "/" : "")}{KubernetesLabels.ImageRepository(project.ProjectPath)}:{options.ImageTag}";

    private static string Scheme(IResource resource, string endpoint) =>
        resource.Annotations.OfType<EndpointAnnotation>().FirstOrDefault(e => e.Name == endpoint)?.Scheme ?? "http";

    /// <summary>The autoscaler reads one router; with several router pods, the per-router inputs see one pod's share.</summary>
    private IEnumerable<string> AutoscalerWarnings()
    {
        foreach (var autoscaler in builder.Resources.Where(r => r.Annotations.OfType<ScaleTargetAnnotation>().Any()))
        {
            var router = autoscaler.Annotations.OfType<ReferenceAnnotation>().Select(r => r.Resource).FirstOrDefault(r => r.Annotations.OfType<EngineListAnnotation>().Any()
                || r.Annotations.OfType<KubernetesAccessAnnotation>().Any(a => a.Resource == "pods"));
            if (router is null || router.Replicas() <= 1)
            {
                continue;
            }
            foreach (var target in autoscaler.Annotations.OfType<ScaleTargetAnnotation>()
                .Where(t => t.Policy.ScaleToZero == true || t.Policy.TargetQpsPerReplica is not null))
            {
                yield return $"'{autoscaler.Name}' scales '{target.Engines.Name}' on QPS or from zero, which it reads from one of {router.Replicas()} '{router.Name}' pods: "
                    + "it sees that pod's share only. Run one router replica for such a model.";
            }
        }
    }
}
