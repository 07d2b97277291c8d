using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VllmStack.Tests.Infrastructure;
using static VllmStack.Tests.Publishing.PublishedManifests;

namespace VllmStack.Tests.Publishing;

/// <summary>
/// The AppHost's <c>publish</c> output, built by <c>kubectl kustomize</c>: schema-valid, internally consistent (selectors,
/// ports, references, RBAC), secrets only in the Secret, and the README's overlay applies to it.
/// </summary>
public sealed partial class KubernetesPublisherTests(PublishedManifests published) : IClassFixture<PublishedManifests>
{
    private static readonly string[] OurServices = ["router", "cacheserver", "autoscaler"];

    [Fact]
    public void Publish_writes_every_object_of_the_stack_into_one_namespace()
    {
        string[] expected =
        [
            "Namespace/llm",
            "Deployment/engine", "Service/engine", "PersistentVolumeClaim/engine-hf-cache", "PodDisruptionBudget/engine",
            "Deployment/router", "Service/router", "ServiceAccount/router", "Role/router", "RoleBinding/router", "PodDisruptionBudget/router",
            "Deployment/cacheserver", "Service/cacheserver", "ServiceAccount/cacheserver",
            "StatefulSet/cache", "Service/cache",
            "Deployment/autoscaler", "Service/autoscaler", "ServiceAccount/autoscaler", "Role/autoscaler", "RoleBinding/autoscaler",
            "ServiceMonitor/engine", "ServiceMonitor/router", "ServiceMonitor/cacheserver", "ServiceMonitor/autoscaler",
            "ConfigMap/vllmstack-grafana-dashboard",
        ];
        var present = published.Objects.Select(o => $"{Kind(o)}/{Name(o)}").ToHashSet();
        Assert.Equal([], expected.Where(e => !present.Contains(e)));
        Assert.Single(published.OfKind("Secret"));
        Assert.All(published.Objects.Where(o => Kind(o) != "Namespace"), o => Assert.Equal("llm", (string?)o["metadata"]!["namespace"]));
        Assert.DoesNotContain(published.Objects, o => Kind(o) is "ClusterRole" or "ClusterRoleBinding");
        Assert.Contains("kubectl apply -k", published.PublishOutput);
        // No model has LoRA adapters: no catalogue, and the router is not told of one.
        Assert.DoesNotContain(published.OfKind("ConfigMap"), c => Name(c).Contains("lora", StringComparison.Ordinal));
        Assert.DoesNotContain(Args(published.Get("Deployment", "router")), a => a.StartsWith("--lora", StringComparison.Ordinal));
        Assert.DoesNotContain("--enable-lora", Args(published.Get("Deployment", "engine")));
    }

    [Fact]
    public async Task Every_object_validates_against_the_kubernetes_schemas()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        var result = await KubernetesSchemaValidator.ValidateAsync(published.Yaml, cts.Token);
        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(published.Objects.Count, result.Objects);
    }

    [Fact]
    public void Selectors_match_pod_labels_and_services_target_container_ports()
    {
        var workloads = Workloads().ToList();
        foreach (var workload in workloads)
        {
            Assert.True(Matches(workload["spec"]!["selector"]!["matchLabels"]!.AsObject(), PodLabels(workload)), $"{Name(workload)}: selector does not match its pods");
        }
        foreach (var service in published.OfKind("Service"))
        {
            var selector = service["spec"]!["selector"]!.AsObject();
            var backing = workloads.Where(w => Matches(selector, PodLabels(w))).ToList();
            Assert.True(backing.Count == 1, $"Service {Name(service)} selects {backing.Count} workloads");
            var ports = Containers(backing[0]).SelectMany(c => c["ports"]?.AsArray() ?? []).ToList();
            foreach (var port in service["spec"]!["ports"]!.AsArray())
            {
                var target = (string)port!["targetPort"]!;
                Assert.True(ports.Any(p => (string)p!["name"]! == target || (string)p!["containerPort"]! == target),
                    $"Service {Name(service)} targets port {target}, which its pods do not have");
            }
        }
        foreach (var budget in published.OfKind("PodDisruptionBudget"))
        {
            Assert.Single(workloads, w => Matches(budget["spec"]!["selector"]!["matchLabels"]!.AsObject(), PodLabels(w)));
        }
        foreach (var monitor in published.OfKind("ServiceMonitor"))
        {
            var service = Assert.Single(published.OfKind("Service"), s => Matches(monitor["spec"]!["selector"]!["matchLabels"]!.AsObject(), s["metadata"]!["labels"]!.AsObject()));
            foreach (var endpoint in monitor["spec"]!["endpoints"]!.AsArray())
            {
                Assert.Contains(service["spec"]!["ports"]!.AsArray(), p => (string)p!["name"]! == (string)endpoint!["port"]!);
            }
        }
    }

    [Fact]
    public void The_routers_discovery_selector_and_port_match_the_engine_pods_and_nothing_else()
    {
        var args = Args(published.Get("Deployment", "router"));
        Assert.Equal("k8s", ArgAfter(args, "--service-discovery"));
        var selector = ArgAfter(args, "--k8s-label-selector").Split(',').Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1]);
        var selected = Workloads().Where(w => selector.All(s => (string?)PodLabels(w)[s.Key] == s.Value)).ToList();
        Assert.Equal("engine", Name(Assert.Single(selected)));
        var enginePort = (string)Containers(selected[0]).Single()["ports"]![0]!["containerPort"]!;
        Assert.Equal(enginePort, ArgAfter(args, "--k8s-port"));
        Assert.Equal(enginePort, ArgAfter(Args(selected[0]), "--port"));
    }

    [Fact]
    public void Every_referenced_configmap_secret_volume_claim_and_service_account_exists()
    {
        foreach (var workload in Workloads())
        {
            var pod = workload["spec"]!["template"]!["spec"]!;
            var account = (string?)pod["serviceAccountName"];
            if (account is not null)
            {
                published.Get("ServiceAccount", account);
            }
            foreach (var volume in pod["volumes"]?.AsArray() ?? [])
            {
                if ((string?)volume!["persistentVolumeClaim"]?["claimName"] is { } claim)
                {
                    published.Get("PersistentVolumeClaim", claim);
                }
            }
            foreach (var container in Containers(workload))
            {
                foreach (var from in container["envFrom"]?.AsArray() ?? [])
                {
                    published.Get("ConfigMap", (string)from!["configMapRef"]!["name"]!);
                }
                foreach (var variable in container["env"]?.AsArray() ?? [])
                {
                    if (variable!["valueFrom"]?["configMapKeyRef"] is { } configRef)
                    {
                        Assert.NotNull(published.Get("ConfigMap", (string)configRef["name"]!)["data"]?[(string)configRef["key"]!]);
                    }
                    if (variable["valueFrom"]?["secretKeyRef"] is { } secretRef)
                    {
                        Assert.NotNull(published.Get("Secret", (string)secretRef["name"]!)["data"]?[(string)secretRef["key"]!]);
                    }
                }
            }
        }
        foreach (var binding in published.OfKind("RoleBinding"))
        {
            published.Get("Role", (string)binding["roleRef"]!["name"]!);
            foreach (var subject in binding["subjects"]!.AsArray())
            {
                published.Get("ServiceAccount", (string)subject!["name"]!);
                Assert.Equal("llm", (string?)subject["namespace"]);
            }
        }
        published.Get("Service", (string)published.Get("StatefulSet", "cache")["spec"]!["serviceName"]!);
    }

    [Fact]
    public void Rbac_grants_exactly_pod_discovery_to_the_router_and_engine_scaling_to_the_autoscaler()
    {
        Assert.Equal(["autoscaler", "router"], published.OfKind("Role").Select(Name).Order());
        Assert.Equal("""[{"apiGroups":[""],"resources":["pods"],"verbs":["get","list","watch"]}]""",
            published.Get("Role", "router")["rules"]!.ToJsonString());
        Assert.Equal("""[{"apiGroups":["apps"],"resourceNames":["engine"],"resources":["deployments/scale"],"verbs":["get","patch"]}]""",
            published.Get("Role", "autoscaler")["rules"]!.ToJsonString());
        // Pods without a Role get no API token at all.
        foreach (var workload in Workloads().Where(w => Name(w) is not ("router" or "autoscaler")))
        {
            Assert.Equal("false", (string?)workload["spec"]!["template"]!["spec"]!["automountServiceAccountToken"]);
        }
        Assert.Equal("kubernetes", ConfigValue("autoscaler", "Autoscaler__Actuator"));
        Assert.Equal("engine", ConfigValue("autoscaler", "Autoscaler__Targets__0__Name"));
    }

    [Fact]
    public void Secret_values_are_only_references_to_the_secret_which_the_user_fills()
    {
        foreach (var file in Directory.EnumerateFiles(published.Output, "*", SearchOption.AllDirectories))
        {
            var text = File.ReadAllText(file);
            Assert.DoesNotContain(HfTokenSentinel, text);
            Assert.DoesNotContain(ApiKeySentinel, text);
        }
        var secret = published.OfKind("Secret").Single();
        // cache-password: the password Aspire's Redis resource generates (publish fills in a random one; see PublishCommandTests).
        Assert.Equal(["cache-password", "engine-api-key", "hf-token"], secret["data"]!.AsObject().Select(p => p.Key).Order());
        // Any variable whose name says it is a secret comes from the Secret, directly or through a variable that does.
        foreach (var container in Workloads().SelectMany(Containers))
        {
            var env = container["env"]?.AsArray().Select(e => e!.AsObject()).ToList() ?? [];
            var fromSecret = env.Where(e => e["valueFrom"]?["secretKeyRef"] is not null).Select(e => (string)e["name"]!).ToHashSet();
            foreach (var variable in env.Where(e => SecretName().IsMatch((string)e["name"]!)))
            {
                var value = (string?)variable["value"];
                Assert.True(variable["valueFrom"]?["secretKeyRef"] is not null || (value is not null && fromSecret.Any(s => value == $"$({s})")),
                    $"{(string)container["name"]!}: {(string)variable["name"]!} does not come from the Secret");
            }
        }
        foreach (var config in published.OfKind("ConfigMap").Where(c => Name(c) != "vllmstack-grafana-dashboard"))
        {
            Assert.DoesNotContain(config["data"]!.AsObject(), p => SecretName().IsMatch(p.Key));
        }
        var engine = Containers(published.Get("Deployment", "engine")).Single();
        Assert.Equal("$(PARAMETER_HF_TOKEN)", EnvValue(engine, "HF_TOKEN"));
        Assert.Equal("$(PARAMETER_ENGINE_API_KEY)", EnvValue(engine, "VLLM_API_KEY"));
        Assert.Equal("$(PARAMETER_ENGINE_API_KEY)", EnvValue(Containers(published.Get("Deployment", "router")).Single(), "Router__Forwarding__EngineApiKey"));
        Assert.Contains("hf-token=\n", File.ReadAllText(Path.Combine(published.Output, "secrets.env")));
    }

    [Fact]
    public void Our_services_run_as_non_root_on_a_read_only_filesystem_without_capabilities_and_with_resources()
    {
        foreach (var name in OurServices)
        {
            var deployment = published.Get("Deployment", name);
            var pod = deployment["spec"]!["template"]!["spec"]!;
            Assert.Equal("true", (string?)pod["securityContext"]!["runAsNonRoot"]);
            var container = Containers(deployment).Single();
            Assert.Equal($"registry.example.com/acme/vllmstack-{name}:1.2.3", (string?)container["image"]);
            var security = container["securityContext"]!;
            Assert.Equal("true", (string?)security["readOnlyRootFilesystem"]);
            Assert.Equal("false", (string?)security["allowPrivilegeEscalation"]);
            Assert.Equal("""["ALL"]""", security["capabilities"]!["drop"]!.ToJsonString());
            Assert.NotNull(container["resources"]!["requests"]!["cpu"]);
            Assert.NotNull(container["resources"]!["requests"]!["memory"]);
            Assert.NotNull(container["resources"]!["limits"]!["memory"]);
            Assert.Equal("/health", (string?)container["readinessProbe"]!["httpGet"]!["path"]);
            Assert.Equal("/alive", (string?)container["livenessProbe"]!["httpGet"]!["path"]);
            Assert.Equal("http://+:8080", ConfigValue(name, "ASPNETCORE_URLS"));
        }
        Assert.Equal("Recreate", (string?)published.Get("Deployment", "autoscaler")["spec"]!["strategy"]!["type"]);
        Assert.Equal("1", (string?)published.Get("Deployment", "autoscaler")["spec"]!["replicas"]);
    }

    [Fact]
    public void Engines_serve_the_model_on_gpus_with_health_probes_a_shared_model_cache_and_shared_memory()
    {
        var deployment = published.Get("Deployment", "engine");
        var pod = deployment["spec"]!["template"]!["spec"]!;
        var container = Containers(deployment).Single();
        Assert.StartsWith("vllm/vllm-openai:", (string?)container["image"]);
        Assert.Equal("""["vllm","serve"]""", container["command"]!.ToJsonString());
        var args = Args(deployment);
        Assert.Equal("$(PARAMETER_MODEL)", args[0]);
        Assert.Equal(Model, (string?)published.OfKind("ConfigMap").Single(c => Name(c).StartsWith("parameters-", StringComparison.Ordinal))["data"]!["model"]);
        Assert.Equal("0.0.0.0", ArgAfter(args, "--host"));
        Assert.Equal("1", (string?)container["resources"]!["limits"]!["nvidia.com/gpu"]);
        foreach (var probe in new[] { "startupProbe", "readinessProbe", "livenessProbe" })
        {
            Assert.Equal("/health", (string?)container[probe]!["httpGet"]!["path"]);
        }
        var startup = container["startupProbe"]!;
        Assert.True(int.Parse((string)startup["periodSeconds"]!) * int.Parse((string)startup["failureThreshold"]!) >= 600, "startup budget under 10 minutes");
        var volumes = pod["volumes"]!.AsArray();
        Assert.Contains(volumes, v => (string?)v!["emptyDir"]?["medium"] == "Memory" && container["volumeMounts"]!.AsArray().Any(m => (string)m!["name"]! == (string)v["name"]! && (string)m["mountPath"]! == "/dev/shm"));
        var cacheMount = container["volumeMounts"]!.AsArray().Single(m => volumes.Any(v => (string)v!["name"]! == (string)m!["name"]! && v["persistentVolumeClaim"] is not null));
        Assert.Equal((string)cacheMount!["mountPath"]!, ConfigValue("engine", "HF_HOME"));
        Assert.Equal("ReadWriteMany", (string?)published.Get("PersistentVolumeClaim", "engine-hf-cache")["spec"]!["accessModes"]![0]);
        // Starts within the autoscaler's bounds.
        var replicas = int.Parse((string)deployment["spec"]!["replicas"]!);
        Assert.InRange(replicas, int.Parse(ConfigValue("autoscaler", "Autoscaler__Targets__0__Policy__MinReplicas")), int.Parse(ConfigValue("autoscaler", "Autoscaler__Targets__0__Policy__MaxReplicas")));
    }

    [Fact]
    public void Aspire_variables_point_at_the_services_dns_names_and_ports()
    {
        string ServicePort(string service) => (string)published.Get("Service", service)["spec"]!["ports"]![0]!["port"]!;
        Assert.Equal($"http://cacheserver:{ServicePort("cacheserver")}", ConfigValue("router", "services__cacheserver__http__0"));
        Assert.Equal($"http://router:{ServicePort("router")}", ConfigValue("autoscaler", "services__router__http__0"));
        // Aspire's Redis has a password (its generated cache-password parameter): the connection string names it, from the Secret.
        var cacheServer = Containers(published.Get("Deployment", "cacheserver")).Single();
        Assert.Equal($"cache:{ServicePort("cache")},password=$(PARAMETER_CACHE_PASSWORD)", EnvValue(cacheServer, "ConnectionStrings__cache"));
        Assert.Equal("cache-password", SecretKeyOf(cacheServer, "PARAMETER_CACHE_PASSWORD"));
        // … and Redis requires that very password.
        var redis = Containers(published.Get("StatefulSet", "cache")).Single();
        Assert.Equal("$(PARAMETER_CACHE_PASSWORD)", EnvValue(redis, "REDIS_PASSWORD"));
        Assert.Equal("cache-password", SecretKeyOf(redis, "PARAMETER_CACHE_PASSWORD"));
        var command = string.Join(' ', redis["command"]!.AsArray().Concat(redis["args"]!.AsArray()).Select(a => (string)a!));
        Assert.StartsWith("/bin/sh -c redis-server --requirepass $REDIS_PASSWORD", command);
        // In memory, like the local one: no snapshots of the KV pool.
        Assert.EndsWith("--save '' --appendonly no", command);
    }

    [Fact]
    public async Task The_overlay_in_the_readme_changes_the_model_the_engine_replicas_and_the_gpu_type()
    {
        var readme = await File.ReadAllTextAsync(Path.Combine(RepoPaths.Root, "README.md"));
        var block = OverlayBlock().Match(readme);
        Assert.True(block.Success, "README has no ```yaml block starting with '# my-cluster/kustomization.yaml'");
        var overlay = Path.Combine(published.Root, "my-cluster");
        Directory.CreateDirectory(overlay);
        await File.WriteAllTextAsync(Path.Combine(overlay, "kustomization.yaml"), block.Groups[1].Value);
        var objects = ParseYaml(await KustomizeAsync(overlay));
        var parameters = objects.Single(o => Kind(o) == "ConfigMap" && Name(o).StartsWith("parameters-", StringComparison.Ordinal));
        Assert.NotEqual(Model, (string?)parameters["data"]!["model"]);
        var engine = objects.Single(o => Kind(o) == "Deployment" && Name(o) == "engine");
        Assert.Equal("4", (string?)engine["spec"]!["replicas"]);
        Assert.NotNull(engine["spec"]!["template"]!["spec"]!["nodeSelector"]!["nvidia.com/gpu.product"]);
        // Pods pick up the new parameters ConfigMap (its hashed name changed with its content).
        var reference = Containers(engine).Single()["env"]!.AsArray().Select(e => (string?)e!["valueFrom"]?["configMapKeyRef"]?["name"]).First(n => n is not null);
        Assert.Equal(Name(parameters), reference);
    }

    [Fact]
    public void The_grafana_dashboard_is_a_labelled_configmap_with_the_production_stack_panels()
    {
        var config = published.Get("ConfigMap", "vllmstack-grafana-dashboard");
        Assert.Equal("1", (string?)config["metadata"]!["labels"]!["grafana_dashboard"]);
        var dashboard = JsonNode.Parse((string)config["data"]!["vllmstack-dashboard.json"]!)!;
        var titles = dashboard["panels"]!.AsArray().Select(p => (string)p!["title"]!).ToList();
        foreach (var title in new[] { "Available engines", "Request latency", "TTFT distribution", "Running requests", "Waiting requests", "KV-cache usage", "KV-cache hit rate", "QPS" })
        {
            Assert.Contains(title, titles);
        }
    }

    internal static IEnumerable<string> DashboardQueries(JsonNode dashboard) =>
        dashboard["panels"]!.AsArray().SelectMany(p => p!["targets"]!.AsArray()).Select(t => (string)t!["expr"]!)
            .Concat(dashboard["templating"]!["list"]!.AsArray().Select(v => (string?)v!["query"]).Where(q => q is not null && q.Contains('(')).Select(q => q!));

    private IEnumerable<JsonObject> Workloads() => published.OfKind("Deployment").Concat(published.OfKind("StatefulSet"));

    private static JsonObject PodLabels(JsonObject workload) => workload["spec"]!["template"]!["metadata"]!["labels"]!.AsObject();

    private static bool Matches(JsonObject selector, JsonObject labels) => selector.All(s => (string?)labels[s.Key] == (string?)s.Value);

    private static string? EnvValue(JsonObject container, string name) =>
        (string?)container["env"]!.AsArray().SingleOrDefault(e => (string)e!["name"]! == name)?["value"];

    private static string? SecretKeyOf(JsonObject container, string name) =>
        (string?)container["env"]!.AsArray().SingleOrDefault(e => (string)e!["name"]! == name)?["valueFrom"]?["secretKeyRef"]?["key"];

    private string ConfigValue(string resource, string key) => published.ConfigValue(resource, key) ?? throw new Xunit.Sdk.XunitException($"{resource}'s ConfigMap has no {key}");

    [GeneratedRegex("(?i)token|key|password|secret")]
    private static partial Regex SecretName();

    [GeneratedRegex("```yaml\n(# my-cluster/kustomization.yaml\n.*?)```", RegexOptions.Singleline)]
    private static partial Regex OverlayBlock();
}
