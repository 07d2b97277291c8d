using System.Text.Json.Nodes;
using VllmStack.Tests.Infrastructure;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace VllmStack.Tests.Publishing;

/// <summary>
/// One run of the built AppHost's publish pipeline (<c>--operation publish --step publish</c>, what <c>aspire publish</c>
/// runs) into a temporary folder, and what <c>kubectl kustomize</c> makes of it: the objects as JSON (YAML scalars stay
/// strings, so compare numbers as text).
/// </summary>
public class PublishedManifests : IAsyncLifetime
{
    // Values of the secret parameters given to publish: they must appear in no file it writes.
    public const string HfTokenSentinel = "hf_SENTINELtokenVALUE123";
    public const string ApiKeySentinel = "sk-SENTINELengineKEY456";
    public const string Model = "mistralai/Mistral-7B-Instruct-v0.3";

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "vllmstack-publish-" + Guid.NewGuid().ToString("N")[..8]);

    public string Output => Path.Combine(Root, "deploy");

    public string PublishOutput { get; private set; } = "";

    public string Yaml { get; private set; } = "";

    public IReadOnlyList<JsonObject> Objects { get; private set; } = [];

    public async Task InitializeAsync()
    {
        var (code, output) = await PublishAsync(["--output-path", Output, .. Arguments()]);
        PublishOutput = output;
        Assert.True(code == 0, $"publish exited {code}:\n{output}");
        Yaml = await KustomizeAsync(Output);
        Objects = ParseYaml(Yaml);
    }

    /// <summary>What publish is given besides the output folder.</summary>
    protected virtual IEnumerable<string> Arguments() => ["--Kubernetes:ServiceMonitors=true", "--Kubernetes:Namespace=llm",
        "--Kubernetes:Registry=registry.example.com/acme", "--Kubernetes:ImageTag=1.2.3",
        $"--Parameters:model={Model}", $"--Parameters:hf-token={HfTokenSentinel}", $"--Parameters:engine-api-key={ApiKeySentinel}"];

    public Task DisposeAsync()
    {
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
        return Task.CompletedTask;
    }

    public IEnumerable<JsonObject> OfKind(string kind) => Objects.Where(o => Kind(o) == kind);

    public JsonObject Get(string kind, string name) =>
        OfKind(kind).SingleOrDefault(o => Name(o) == name) ?? throw new Xunit.Sdk.XunitException($"no {kind} named {name}; have: {string.Join(", ", Objects.Select(o => $"{Kind(o)}/{Name(o)}"))}");

    /// <summary>A setting of the resource's ConfigMap (the one its container reads with envFrom), or null.</summary>
    public string? ConfigValue(string resource, string key)
    {
        var container = Containers(Get("Deployment", resource)).Single();
        var map = (string)container["envFrom"]![0]!["configMapRef"]!["name"]!;
        return (string?)Get("ConfigMap", map)["data"]![key];
    }

    public static IEnumerable<JsonObject> Containers(JsonObject workload) =>
        workload["spec"]!["template"]!["spec"]!["containers"]!.AsArray().Select(c => c!.AsObject());

    public static List<string> Args(JsonObject workload) => [.. Containers(workload).Single()["args"]!.AsArray().Select(a => (string)a!)];

    public static string ArgAfter(List<string> args, string flag)
    {
        var index = args.IndexOf(flag);
        Assert.True(index >= 0 && index + 1 < args.Count, $"{flag} missing from {string.Join(' ', args)}");
        return args[index + 1];
    }

    public static string Kind(JsonNode o) => (string)o["kind"]!;

    public static string Name(JsonNode o) => (string)o["metadata"]!["name"]!;

    /// <summary>
    /// Runs the built AppHost's publish pipeline (<c>dotnet VllmStack.AppHost.dll --operation publish --step publish …</c>);
    /// its exit code and output.
    /// </summary>
    public static async Task<(int ExitCode, string Output)> PublishAsync(IEnumerable<string> args)
    {
        var run = await ProgramProcess.RunToExitAsync("dotnet",
            [RepoPaths.ProgramDll("VllmStack.AppHost"), "--operation", "publish", "--step", "publish", .. args], Bound);
        return (run.ExitCode, run.Output);
    }

    public static async Task<string> KustomizeAsync(string directory)
    {
        var run = await ProgramProcess.RunToExitAsync("kubectl", ["kustomize", directory], TimeSpan.FromSeconds(60));
        Assert.True(run.ExitCode == 0, $"kubectl kustomize {directory} failed:\n{run.Output}");
        return run.StandardOutput;
    }

    /// <summary>Every document of a YAML stream as JSON.</summary>
    public static IReadOnlyList<JsonObject> ParseYaml(string yaml)
    {
        IParser parser = new Parser(new StringReader(yaml));
        var deserializer = new DeserializerBuilder().Build();
        var json = new SerializerBuilder().JsonCompatible().Build();
        parser.Consume<YamlDotNet.Core.Events.StreamStart>();
        var objects = new List<JsonObject>();
        while (parser.Accept<YamlDotNet.Core.Events.DocumentStart>(out _))
        {
            if (deserializer.Deserialize<object>(parser) is { } document)
            {
                objects.Add(JsonNode.Parse(json.Serialize(document))!.AsObject());
            }
        }
        return objects;
    }
}
