using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.Logging;
using VllmStack.Hosting.Autoscaler;
using VllmStack.Hosting.Vllm;
using static VllmStack.Hosting.Kubernetes.Manifest;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>What a publish wrote (paths relative to <paramref name="OutputPath"/>), the images it names, and what the user should know.</summary>
internal sealed record PublishResult(string OutputPath, IReadOnlyList<string> Files, IReadOnlyList<string> Images, IReadOnlyList<string> Warnings);

/// <summary>
/// Turns the application model into Kubernetes objects: each resource's arguments and environment as Aspire gives them
/// in publish mode (<see cref="ExecutionConfigurationBuilder"/>), translated by <see cref="ClusterValues"/>, become a
/// workload of its kind; the parameters they refer to become the <c>parameters</c> ConfigMap or keys of the Secret.
/// </summary>
internal sealed class ManifestBuilder(DistributedApplicationModel model, DistributedApplicationExecutionContext executionContext,
    KubernetesPublishOptions options, ILogger logger)
{
    private readonly ClusterValues _values = new(model);
    private readonly ManifestBundle _bundle = new(options.Namespace);
    private readonly List<string> _images = [];

    /// <summary>Builds every object and writes the bundle into <paramref name="outputPath"/>.</summary>
    /// <exception cref="KubernetesPublishException">A resource or value has no Kubernetes form, or a parameter has no value.</exception>
    public async Task<PublishResult> WriteAsync(string outputPath, CancellationToken cancellationToken)
    {
        _bundle.Add("namespace.yaml", Object("v1", "Namespace", options.Namespace, new() { [KubernetesLabels.PartOfLabel] = KubernetesLabels.PartOf }));
        foreach (var resource in model.Resources)
        {
            await AddAsync(resource, cancellationToken).ConfigureAwait(false);
        }
        await AddParametersAsync(cancellationToken).ConfigureAwait(false);
        if (options.ServiceMonitors)
        {
            _bundle.Add("servicemonitors.yaml", [.. model.Resources.Where(r => r is VllmResource or ProjectResource).Select(WorkloadObjects.ServiceMonitor)]);
        }
        _bundle.AddFileConfigMap(GrafanaDashboard.ConfigMapName, GrafanaDashboard.File, GrafanaDashboard.Json(),
            new() { ["grafana_dashboard"] = "1", [KubernetesLabels.PartOfLabel] = KubernetesLabels.PartOf });
        var files = await _bundle.WriteAsync(outputPath, cancellationToken).ConfigureAwait(false);
        return new PublishResult(outputPath, files, _images, [.. AutoscalerWarnings()]);
    }

    private async Task AddAsync(IResource resource, CancellationToken cancellationToken)
    {
        if (resource is ParameterResource or KubernetesEnvironmentResource || resource.IsExcludedFromPublish())
        {
            return;
        }
        if (!KubernetesLabels.IsObjectName(resource.Name))
        {
            throw new KubernetesPublishException($"Resource '{resource.Name}' cannot be a Kubernetes object's name: use lower-case letters, digits and '-'.");
        }
        switch (resource)
        {
            case VllmResource engine:
            {
                var published = Publish(engine, [.. EngineWorkload.Arguments(engine).Select(Translate)],
                    EngineWorkload.Environment(engine).ToDictionary(v => v.Key, v => Translate(v.Value)));
                Add(published, EngineWorkload.Objects(engine, published, options.StorageClass));
                break;
            }
            case RedisResource redis:
            {
                var (args, env) = await ReadAsync(redis, cancellationToken).ConfigureAwait(false);
                var published = Publish(redis, RedisWorkload.InMemory(args), env);
                Add(published, RedisWorkload.Objects(redis, published));
                break;
            }
            case ProjectResource project:
            {
                var image = $"{(options.RegistryPrefix is { } registry ? registry + "/" : "")}{KubernetesLabels.ImageRepository(project.GetProjectMetadata().ProjectPath)}:{options.ImageTag}";
                _images.Add(image);
                var (args, env) = await ReadAsync(project, cancellationToken).ConfigureAwait(false);
                // ASPNETCORE_URLS below says the same as Aspire's HTTP_PORTS, and ASP.NET would warn at every start that it overrides it.
                env.Remove("HTTP_PORTS");
                foreach (var (key, value) in ServiceSettings(project))
                {
                    env[key] = value;
                }
                var published = Publish(project, args, env, await ConfigFilesAsync(project, cancellationToken).ConfigureAwait(false));
                Add(published, ServiceWorkload.Objects(published, image));
                break;
            }
            default:
                throw new KubernetesPublishException(
                    $"Resource '{resource.Name}' ({resource.GetType().Name}) cannot be published to Kubernetes: only vLLM engine groups, Redis, parameters and the repository's projects can.");
        }
    }

    private string Translate(object value) => value switch
    {
        string text => _values.Translate(text, text),
        IManifestExpressionProvider expression => _values.Translate(expression),
        _ => _values.Translate(value, Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? ""),
    };

    /// <summary>The resource's arguments and environment as the model declares them for publishing, in their in-cluster form.</summary>
    private async Task<(IReadOnlyList<string> Args, Dictionary<string, string> Env)> ReadAsync(IResource resource, CancellationToken cancellationToken)
    {
        var configuration = await ExecutionConfigurationBuilder.Create(resource)
            .WithArgumentsConfig()
            .WithEnvironmentVariablesConfig()
            .BuildAsync(executionContext, logger, cancellationToken).ConfigureAwait(false);
        if (configuration.Exception is { } failure)
        {
            throw new InvalidOperationException($"The arguments or environment of '{resource.Name}' could not be evaluated for publishing.", failure);
        }
        var args = configuration.ArgumentsWithUnprocessed.Select(a => _values.Translate(a.Unprocessed, a.Processed)).ToList();
        var env = configuration.EnvironmentVariablesWithUnprocessed.ToDictionary(v => v.Key, v => _values.Translate(v.Value.Unprocessed, v.Value.Processed), StringComparer.Ordinal);
        return (args, env);
    }

    private PublishedResource Publish(IResource resource, IReadOnlyList<string> args, IReadOnlyDictionary<string, string> env,
        IReadOnlyList<KubernetesConfigFileAnnotation>? configFiles = null) =>
        new(resource, Replicas(resource), args, PodEnvironment.Build(env, args, _values.ReferencedParameters), configFiles ?? []);

    /// <summary>The resource's config files that have content now, each added to the bundle as its own ConfigMap.</summary>
    private async Task<IReadOnlyList<KubernetesConfigFileAnnotation>> ConfigFilesAsync(IResource resource, CancellationToken cancellationToken)
    {
        var files = new List<KubernetesConfigFileAnnotation>();
        foreach (var file in resource.Annotations.OfType<KubernetesConfigFileAnnotation>())
        {
            if (await file.Content(cancellationToken).ConfigureAwait(false) is not { } content)
            {
                continue;
            }
            // The file's path in the bundle ends in the key the ConfigMap gives it.
            _bundle.AddFileConfigMap(file.ConfigMapName, $"config/{file.ConfigMapName}/{file.FileName}", content, KubernetesLabels.Labels(resource));
            files.Add(file);
        }
        return files;
    }

    private void Add(PublishedResource published, IEnumerable<Dictionary<string, object?>> objects)
    {
        _bundle.Add(published.Resource.Name + ".yaml", [.. objects]);
        if (published.Environment.ConfigData.Count > 0)
        {
            _bundle.AddConfigMap(published.ConfigMapName, published.Environment.ConfigData);
        }
    }

    /// <summary>Non-secret parameters go to the <c>parameters</c> ConfigMap with their value; secret ones become keys of the Secret, never with a value.</summary>
    private async Task AddParametersAsync(CancellationToken cancellationToken)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var parameter in _values.ReferencedParameters)
        {
            if (parameter.Secret)
            {
                _bundle.AddSecretKey(parameter.Name, SecretKeyOf(parameter));
                continue;
            }
            try
            {
                values[parameter.Name] = await parameter.GetValueAsync(cancellationToken).ConfigureAwait(false) ?? "";
            }
            catch (MissingParameterValueException e)
            {
                throw new KubernetesPublishException($"Parameter '{parameter.Name}' has no value: {e.Message}");
            }
        }
        _bundle.AddConfigMap(PodEnvironment.ParametersConfigMap, values);
    }

    private static SecretKey SecretKeyOf(ParameterResource parameter) => parameter switch
    {
        { IsConnectionString: true } => new($"{parameter.Name}: connection string '{parameter.Name}' (for Redis host:port[,password=…])"),
        // Aspire's generated passwords (Redis's cache-password): publish makes one, as Aspire would.
        { Default: GenerateParameterDefault generated } => new($"{parameter.Name}: a secret Aspire generates (publish fills in a random one when empty; letters and digits)", generated.GetDefaultValue),
        _ => new($"{parameter.Name}: parameter '{parameter.Name}'{(parameter.Description is { Length: > 0 } description ? $" ({description})" : "")}"),
    };

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

    /// <summary>Engines start at their declared count, kept within the autoscaler's bounds; others as <c>WithPublishedReplicas</c> says.</summary>
    private int Replicas(IResource resource)
    {
        if (resource is not VllmResource engine)
        {
            return PublishedReplicas(resource);
        }
        var replicas = engine.Replicas;
        var target = model.Resources.SelectMany(r => r.Annotations.OfType<ScaleTargetAnnotation>()).FirstOrDefault(t => t.Engines == engine);
        if (target is not null)
        {
            replicas = Math.Max(replicas, target.Policy.MinReplicas ?? 1);
            replicas = Math.Min(replicas, target.Policy.MaxReplicas ?? replicas);
        }
        return replicas;
    }

    private static int PublishedReplicas(IResource resource) =>
        resource.Annotations.OfType<PublishedReplicasAnnotation>().LastOrDefault()?.Replicas ?? resource.GetReplicaCount();

    /// <summary>The autoscaler reads one router; with several router pods, the per-router inputs see one pod's share.</summary>
    private IEnumerable<string> AutoscalerWarnings()
    {
        foreach (var autoscaler in model.Resources.Where(r => r.Annotations.OfType<ScaleTargetAnnotation>().Any()))
        {
            var router = autoscaler.Annotations.OfType<ResourceRelationshipAnnotation>()
                .Select(r => r.Resource)
                .FirstOrDefault(r => r.Annotations.OfType<KubernetesAccessAnnotation>().Any(a => a.Resource == "pods"));
            if (router is null || PublishedReplicas(router) <= 1)
            {
                continue;
            }
            foreach (var target in autoscaler.Annotations.OfType<ScaleTargetAnnotation>()
                .Where(t => t.Policy.ScaleToZero == true || t.Policy.TargetQpsPerReplica is not null))
            {
                yield return $"'{autoscaler.Name}' scales '{target.Engines.Name}' on QPS or from zero, which it reads from one of {PublishedReplicas(router)} '{router.Name}' pods: "
                    + "it sees that pod's share only. Run one router replica for such a model.";
            }
        }
    }
}
