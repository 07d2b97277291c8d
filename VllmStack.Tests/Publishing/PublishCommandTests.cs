using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VllmStack.Tests.Infrastructure;
using static VllmStack.Tests.Publishing.PublishedManifests;

namespace VllmStack.Tests.Publishing;

/// <summary>The publish pipeline's other paths: bad options, an external Redis, publishing again, and the image names.</summary>
public sealed class PublishCommandTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "vllmstack-publish-" + Guid.NewGuid().ToString("N")[..8]);

    // The external Redis's connection string given to publish: a secret, so it must appear in no file.
    private const string ExternalRedisSentinel = "redis.example:6380,password=SENTINELredisPASSWORD789";

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Theory]
    [InlineData("--Kubernetes:Namespace=Not_A_Label", "Kubernetes:Namespace 'Not_A_Label' must be a DNS label")]
    [InlineData("--Kubernetes:Namespaces=llm", "Unknown setting Kubernetes:Namespaces")]
    [InlineData("--Kubernetes:ServiceMonitors=maybe", "'maybe' at 'Kubernetes:ServiceMonitors'")]
    [InlineData("--Kubernetes:ImageTag=-dash-first", "Kubernetes:ImageTag '-dash-first' is not a valid image tag")]
    [InlineData("--Kubernetes:Registry=https://ghcr.io/acme", "Kubernetes:Registry 'https://ghcr.io/acme' must be a registry host")]
    [InlineData("--Kubernetes:OtlpEndpoint=ftp://collector:4318", "Kubernetes:OtlpEndpoint 'ftp://collector:4318' must be an absolute http or https URL")]
    public async Task A_bad_option_fails_the_publish_with_the_reason_and_no_stack_trace(string option, string reason)
    {
        var output = Path.Combine(_root, "deploy");
        var (code, text) = await PublishAsync(["--output-path", output, option]);
        Assert.Equal(2, code);
        Assert.Contains(reason, text);
        Assert.DoesNotContain("   at ", text);
        Assert.DoesNotContain("Exception", text);
        Assert.False(Directory.Exists(output), "a failed publish wrote files");
    }

    [Fact]
    public async Task An_output_folder_that_cannot_be_written_fails_the_publish_with_the_reason()
    {
        Directory.CreateDirectory(_root);
        var file = Path.Combine(_root, "a-file");
        await File.WriteAllTextAsync(file, "not a folder");
        var (code, text) = await PublishAsync(["--output-path", Path.Combine(file, "deploy")]);
        Assert.Equal(2, code);
        Assert.Contains($"Cannot write the manifests to {Path.Combine(file, "deploy")}", text);
        Assert.DoesNotContain("   at ", text);
    }

    [Fact]
    public async Task An_external_redis_is_a_connection_string_from_the_secret_and_no_redis_is_deployed()
    {
        var output = Path.Combine(_root, "deploy");
        var (code, text) = await PublishAsync(["--output-path", output, "--Parameters:external-redis=true", $"--ConnectionStrings:cache={ExternalRedisSentinel}"]);
        Assert.True(code == 0, text);
        Assert.DoesNotContain(Directory.EnumerateFiles(output, "*", SearchOption.AllDirectories), f => File.ReadAllText(f).Contains(ExternalRedisSentinel));
        var objects = ParseYaml(await KustomizeAsync(output));
        Assert.DoesNotContain(objects, o => Kind(o) == "StatefulSet");
        var container = objects.Single(o => Kind(o) == "Deployment" && Name(o) == "cacheserver")["spec"]!["template"]!["spec"]!["containers"]![0]!;
        var env = container["env"]!.AsArray();
        Assert.Equal("$(PARAMETER_CACHE)", (string?)env.Single(e => (string)e!["name"]! == "ConnectionStrings__cache")!["value"]);
        Assert.Equal("cache", (string?)env.Single(e => (string)e!["name"]! == "PARAMETER_CACHE")!["valueFrom"]!["secretKeyRef"]!["key"]);
        Assert.Contains("\ncache=\n", await File.ReadAllTextAsync(Path.Combine(output, "secrets.env")));
    }

    [Fact]
    public async Task Two_configured_models_publish_as_two_engine_deployments_behind_one_router_and_both_are_scaled()
    {
        var output = Path.Combine(_root, "deploy");
        var (code, text) = await PublishAsync(["--output-path", output,
            "--Models:0:Name=acme/Alpha-8B", "--Models:0:Group=engine-alpha", "--Models:0:Replicas=1", "--Models:0:MaxLoras=2",
            "--Models:0:Adapters:0:Name=alpha-sql", "--Models:0:Adapters:0:Source=/adapters/sql",
            "--Models:1:Name=Qwen/Qwen2.5-7B-Instruct", "--Models:1:Gpus=2", "--Models:1:Autoscaling:MaxReplicas=6"]);
        Assert.True(code == 0, text);
        var objects = ParseYaml(await KustomizeAsync(output));
        JsonObject Deployment(string name) => objects.Single(o => Kind(o) == "Deployment" && Name(o) == name);
        static JsonObject Container(JsonObject workload) => workload["spec"]!["template"]!["spec"]!["containers"]![0]!.AsObject();
        static List<string> Args(JsonObject workload) => [.. Container(workload)["args"]!.AsArray().Select(a => (string)a!)];

        var engines = objects.Where(o => Kind(o) == "Deployment" && (string?)o["metadata"]!["labels"]!["app.kubernetes.io/component"] == "engine").ToList();
        Assert.Equal(["engine-alpha", "engine-qwen2-5-7b-instruct"], engines.Select(Name).Order());
        var alpha = Args(Deployment("engine-alpha"));
        Assert.Equal("2", alpha[alpha.IndexOf("--max-loras") + 1]);
        Assert.Contains("--enable-lora", alpha);
        Assert.DoesNotContain("--enable-lora", Args(Deployment("engine-qwen2-5-7b-instruct")));
        Assert.Equal("2", (string?)Container(Deployment("engine-qwen2-5-7b-instruct"))["resources"]!["limits"]!["nvidia.com/gpu"]);
        var parameters = await File.ReadAllTextAsync(Path.Combine(output, "config", "parameters.env"));
        Assert.Contains("engine-alpha-model=acme/Alpha-8B\n", parameters.ReplaceLineEndings("\n"));
        Assert.Contains("engine-qwen2-5-7b-instruct-model=Qwen/Qwen2.5-7B-Instruct\n", parameters.ReplaceLineEndings("\n"));

        // One router watches the pods of both groups (a set-based selector) and nothing else.
        var router = Args(Deployment("router"));
        var selector = router[router.IndexOf("--k8s-label-selector") + 1];
        Assert.Equal("app.kubernetes.io/name in (engine-alpha,engine-qwen2-5-7b-instruct),app.kubernetes.io/part-of=vllmstack", selector);
        Assert.All(engines, e => Assert.Equal("vllmstack", (string?)e["spec"]!["template"]!["metadata"]!["labels"]!["app.kubernetes.io/part-of"]));

        // The autoscaler scales each group by its own bounds.
        var autoscalerConfig = objects.Single(o => Kind(o) == "ConfigMap"
            && (string?)o["data"]?["Autoscaler__Targets__1__Name"] is not null)["data"]!;
        Assert.Equal("engine-alpha", (string?)autoscalerConfig["Autoscaler__Targets__0__Name"]);
        Assert.Equal("engine-qwen2-5-7b-instruct", (string?)autoscalerConfig["Autoscaler__Targets__1__Name"]);
        Assert.Equal("6", (string?)autoscalerConfig["Autoscaler__Targets__1__Policy__MaxReplicas"]);
    }

    [Fact]
    public async Task Publishing_again_keeps_the_secret_values_filled_in_and_rewrites_the_rest()
    {
        var output = Path.Combine(_root, "deploy");
        var (code, text) = await PublishAsync(["--output-path", output]);
        Assert.True(code == 0, text);
        var secrets = Path.Combine(output, "secrets.env");
        var first = await File.ReadAllTextAsync(secrets);
        // Redis's password is Aspire's generated secret: publish fills it in once, and keeps it.
        var redisPassword = Regex.Match(first, "\ncache-password=([A-Za-z0-9]{16,})\n").Groups[1].Value;
        Assert.NotEmpty(redisPassword);
        await File.WriteAllTextAsync(secrets, first.Replace("hf-token=\n", "hf-token=hf_filled_by_user\n"));
        (code, text) = await PublishAsync(["--output-path", output, "--Parameters:model=another/model"]);
        Assert.True(code == 0, text);
        Assert.Contains("hf-token=hf_filled_by_user\n", await File.ReadAllTextAsync(secrets));
        Assert.Contains($"cache-password={redisPassword}\n", await File.ReadAllTextAsync(secrets));
        Assert.Contains("model=another/model", await File.ReadAllTextAsync(Path.Combine(output, "config", "parameters.env")));
        var secret = ParseYaml(await KustomizeAsync(output)).Single(o => Kind(o) == "Secret");
        Assert.Equal("hf_filled_by_user", System.Text.Encoding.UTF8.GetString(Convert.FromBase64String((string)secret["data"]!["hf-token"]!)));
    }

    [Fact]
    public async Task The_images_named_in_the_manifests_are_the_ones_the_sdk_container_build_produces()
    {
        var output = Path.Combine(_root, "deploy");
        var (code, text) = await PublishAsync(["--output-path", output, "--Kubernetes:Registry=ghcr.io/acme", "--Kubernetes:ImageTag=0.9.1"]);
        Assert.True(code == 0, text);
        var images = ParseYaml(await KustomizeAsync(output))
            .Where(o => Kind(o) == "Deployment" && Name(o) != "engine")
            .Select(o => (string)o["spec"]!["template"]!["spec"]!["containers"]![0]!["image"]!)
            .ToList();
        Assert.Equal(3, images.Count);
        foreach (var project in new[] { "VllmStack.Router", "VllmStack.CacheServer", "VllmStack.Autoscaler" })
        {
            // What `dotnet publish -t:PublishContainer -p:ContainerRegistry=ghcr.io/acme -p:ContainerImageTag=0.9.1` would name the image.
            var run = await ProgramProcess.RunToExitAsync("dotnet", ["msbuild", Path.Combine(RepoPaths.Root, project, project + ".csproj"),
                "-getProperty:ContainerRepository", "-getProperty:ContainerImageTag", "-getProperty:EnableSdkContainerSupport", "-p:ContainerImageTag=0.9.1"], TimeSpan.FromSeconds(90));
            Assert.True(run.ExitCode == 0, run.Output);
            var properties = JsonNode.Parse(run.StandardOutput)!["Properties"]!;
            Assert.Equal("true", (string?)properties["EnableSdkContainerSupport"]);
            Assert.Contains($"ghcr.io/acme/{(string)properties["ContainerRepository"]!}:{(string)properties["ContainerImageTag"]!}", images);
        }
    }
}
