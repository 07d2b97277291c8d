using System.Text.Json.Nodes;
using static VllmStack.Tests.Publishing.PublishedManifests;

namespace VllmStack.Tests.Publishing;

/// <summary>The AppHost published with two models, one with LoRA adapters: what <c>kubectl kustomize</c> makes of it.</summary>
public sealed class LoraPublishedManifests : PublishedManifests
{
    public const string Alpha = "acme/Alpha-8B";

    protected override IEnumerable<string> Arguments() =>
    [
        "--Kubernetes:Namespace=llm",
        $"--Models:0:Name={Alpha}", "--Models:0:Group=engine-alpha", "--Models:0:Replicas=1", "--Models:0:MaxLoras=2",
        "--Models:0:Adapters:0:Name=alpha-sql", "--Models:0:Adapters:0:Source=/adapters/sql",
        "--Models:0:Adapters:1:Name=alpha-chat", "--Models:0:Adapters:1:Source=acme/alpha-chat-lora",
        "--Models:1:Name=Qwen/Qwen2.5-7B-Instruct", "--Models:1:Group=engine-qwen",
    ];
}

/// <summary>
/// Adapters published: the router's catalogue is a fixed-name ConfigMap mounted (as a directory) into its pods, which may
/// read and patch that one ConfigMap; engines of the group with adapters run LoRA with runtime loading, the others as before.
/// </summary>
public sealed class LoraPublishTests(LoraPublishedManifests published) : IClassFixture<LoraPublishedManifests>
{
    private const string ConfigMap = "router-lora-adapters";

    [Fact]
    public void The_catalogue_of_every_declared_adapter_is_a_configmap_with_a_fixed_name_the_router_can_patch()
    {
        var config = published.Get("ConfigMap", ConfigMap);
        Assert.Equal("router", (string?)config["metadata"]!["labels"]!["app.kubernetes.io/name"]);
        var catalogue = JsonNode.Parse((string)config["data"]!["adapters.json"]!)!;
        Assert.Equal("""
            {"adapters":[{"name":"alpha-sql","base_model":"acme/Alpha-8B","source":"/adapters/sql"},{"name":"alpha-chat","base_model":"acme/Alpha-8B","source":"acme/alpha-chat-lora"}]}
            """, catalogue.ToJsonString());
        Assert.Single(config["data"]!.AsObject());
    }

    [Fact]
    public void Router_pods_mount_the_catalogues_directory_read_only_and_are_told_the_file_and_the_configmap()
    {
        var router = published.Get("Deployment", "router");
        var pod = router["spec"]!["template"]!["spec"]!;
        var volume = pod["volumes"]!.AsArray().Single(v => (string?)v!["configMap"]?["name"] == ConfigMap)!;
        var mount = Containers(router).Single()["volumeMounts"]!.AsArray().Single(m => (string)m!["name"]! == (string)volume["name"]!)!;
        Assert.Equal("/etc/vllmstack/lora", (string?)mount["mountPath"]);
        Assert.Equal("true", (string?)mount["readOnly"]);
        // A subPath mount would never see the ConfigMap's later changes.
        Assert.Null(mount["subPath"]);
        var args = Args(router);
        Assert.Equal("/etc/vllmstack/lora/adapters.json", ArgAfter(args, "--lora-adapters-file"));
        Assert.Equal(ConfigMap, ArgAfter(args, "--lora-adapters-configmap"));
        Assert.Equal("2", ArgAfter(args, "--max-loras"));
    }

    [Fact]
    public void The_routers_role_adds_get_and_patch_on_the_catalogue_configmap_only()
    {
        Assert.Equal("""
            [{"apiGroups":[""],"resources":["pods"],"verbs":["get","list","watch"]},{"apiGroups":[""],"resourceNames":["router-lora-adapters"],"resources":["configmaps"],"verbs":["get","update"]}]
            """, published.Get("Role", "router")["rules"]!.ToJsonString());
        Assert.Equal("true", (string?)published.Get("Deployment", "router")["spec"]!["template"]!["spec"]!["automountServiceAccountToken"]);
    }

    [Fact]
    public void Engines_of_the_model_with_adapters_run_lora_with_runtime_loading_and_the_others_do_not()
    {
        var alpha = Args(published.Get("Deployment", "engine-alpha"));
        Assert.Contains("--enable-lora", alpha);
        Assert.Equal("2", ArgAfter(alpha, "--max-loras"));
        Assert.DoesNotContain("--lora-modules", alpha);
        Assert.Equal("True", published.ConfigValue("engine-alpha", "VLLM_ALLOW_RUNTIME_LORA_UPDATING"));

        var qwen = Args(published.Get("Deployment", "engine-qwen"));
        Assert.DoesNotContain("--enable-lora", qwen);
        Assert.Null(published.ConfigValue("engine-qwen", "VLLM_ALLOW_RUNTIME_LORA_UPDATING"));
    }

    [Fact]
    public async Task Every_object_validates_against_the_kubernetes_schemas()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        var result = await KubernetesSchemaValidator.ValidateAsync(published.Yaml, cts.Token);
        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(published.Objects.Count, result.Objects);
    }
}
