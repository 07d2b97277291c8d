using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Eventing;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using VllmStack.Hosting.Lora;
using VllmStack.Hosting.Router;
using VllmStack.Hosting.Vllm;

namespace VllmStack.Tests.Hosting;

/// <summary>
/// LoRA adapters in the app model, on models built here (nothing runs): engines of a group with adapters run with LoRA on
/// and runtime loading allowed, and a router serving the groups gets their adapters' catalogue, written once at start.
/// </summary>
public sealed class LoraHostingTests : IDisposable
{
    private readonly List<string> _files = [];

    public void Dispose()
    {
        foreach (var file in _files.Where(File.Exists))
        {
            File.Delete(file);
        }
    }

    // The testing builder, for its DCP settings: start-up's handlers (BeforeStartEvent) need them, though nothing starts here.
    private static IDistributedApplicationTestingBuilder Builder() =>
        DistributedApplicationTestingBuilder.Create($"--{VllmBuilderExtensions.ModeConfigurationKey}=simulated");

    /// <summary>Two groups (alpha with two adapters and --max-loras 2, beta with one) behind one router.</summary>
    private static (IResourceBuilder<VllmResource> Alpha, IResourceBuilder<VllmResource> Beta, IResourceBuilder<ProjectResource> Router) TwoModels(
        IDistributedApplicationBuilder builder)
    {
        var alpha = builder.AddVllm<Projects.VllmStack_EngineSim>("engine-alpha", builder.AddParameter("alpha-model", "acme/Alpha-1B"))
            .WithEngineOptions(o => o.MaxLoras = 2)
            .WithLoraAdapter("alpha-sql", "/adapters/alpha-sql")
            .WithLoraAdapter("alpha-chat", "acme/alpha-chat-lora");
        var beta = builder.AddVllm<Projects.VllmStack_EngineSim>("engine-beta", builder.AddParameter("beta-model", "acme/Beta-1B"))
            .WithLoraAdapter("beta-sql", "/adapters/beta-sql");
        var router = builder.AddVllmRouter<Projects.VllmStack_Router>("router").WithEngines(alpha).WithEngines(beta);
        return (alpha, beta, router);
    }

    private static async Task<(List<string> Args, Dictionary<string, string> Env)> EvaluateAsync(DistributedApplication app, IResource resource, bool environment)
    {
        var builder = ExecutionConfigurationBuilder.Create(resource).WithArgumentsConfig();
        if (environment)
        {
            builder = builder.WithEnvironmentVariablesConfig();
        }
        var configuration = await builder.BuildAsync(app.Services.GetRequiredService<DistributedApplicationExecutionContext>(), NullLogger.Instance, CancellationToken.None);
        Assert.Null(configuration.Exception);
        return ([.. configuration.Arguments.Select(a => a.Value)], configuration.EnvironmentVariables.ToDictionary(v => v.Key, v => v.Value));
    }

    private static string ArgAfter(List<string> args, string flag)
    {
        var index = args.IndexOf(flag);
        Assert.True(index >= 0 && index + 1 < args.Count, $"{flag} missing from {string.Join(' ', args)}");
        return args[index + 1];
    }

    [Fact]
    public void Engines_of_a_group_with_adapters_run_lora_with_runtime_loading_and_without_lora_modules_when_a_router_manages_them()
    {
        using var builder = Builder();
        var (alpha, beta, _) = TwoModels(builder);
        var plain = builder.AddVllm<Projects.VllmStack_EngineSim>("engine-plain", builder.AddParameter("plain-model", "acme/Plain-1B"))
            .WithEngineOptions(o => o.MaxLoras = 3);

        Assert.Equal(["--max-num-seqs", "256", "--enable-lora", "--max-loras", "2"], alpha.Resource.ServeOptions());
        Assert.Equal(["--max-num-seqs", "256", "--enable-lora"], beta.Resource.ServeOptions());
        Assert.Contains(new KeyValuePair<string, object>("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "True"), alpha.Resource.ReplicaEnvironment());
        // No adapters: LoRA stays off, whatever max-loras says.
        Assert.Equal(["--max-num-seqs", "256"], plain.Resource.ServeOptions());
        Assert.Empty(plain.Resource.ReplicaEnvironment());
    }

    [Fact]
    public void A_group_no_router_serves_loads_its_adapters_at_start()
    {
        using var builder = Builder();
        var alone = builder.AddVllm<Projects.VllmStack_EngineSim>("engine", builder.AddParameter("model", "acme/Alpha-1B"))
            .WithLoraAdapter("alpha-sql", "/adapters/alpha-sql").WithLoraAdapter("alpha-chat", "acme/alpha-chat-lora");
        Assert.Equal(["--max-num-seqs", "256", "--enable-lora", "--lora-modules", "alpha-sql=/adapters/alpha-sql", "alpha-chat=acme/alpha-chat-lora"],
            alone.Resource.ServeOptions());
    }

    [Fact]
    public void Adapter_names_must_be_usable_as_model_names_and_unique_in_their_group()
    {
        using var builder = Builder();
        var engine = builder.AddVllm<Projects.VllmStack_EngineSim>("engine", builder.AddParameter("model", "acme/Alpha-1B")).WithLoraAdapter("sql", "/a/sql");
        Assert.Contains("already has a LoRA adapter named 'sql'", Assert.Throws<ArgumentException>(() => engine.WithLoraAdapter("sql", "/b/sql")).Message);
        Assert.Throws<ArgumentException>(() => engine.WithLoraAdapter("a=b", "/a/b"));
        Assert.Throws<ArgumentException>(() => engine.WithLoraAdapter("two words", "/a/b"));
        Assert.Throws<ArgumentException>(() => engine.WithLoraAdapter("chat", " "));
    }

    [Fact]
    public async Task The_replicas_get_the_lora_flags_and_the_runtime_updating_switch_in_their_command_line_and_environment()
    {
        using var builder = Builder();
        var (alpha, _, _) = TwoModels(builder);
        await using var app = await builder.BuildAsync();
        var replica = alpha.Resource.ReplicaResources[0];
        foreach (var endpoint in replica.Annotations.OfType<EndpointAnnotation>())
        {
            endpoint.AllocatedEndpoint = new AllocatedEndpoint(endpoint, "localhost", 41_000, targetPortExpression: "41000");
        }
        var (args, env) = await EvaluateAsync(app, replica, environment: true);
        Assert.Equal("acme/Alpha-1B", args[0]);
        Assert.Contains("--enable-lora", args);
        Assert.Equal("2", ArgAfter(args, "--max-loras"));
        Assert.DoesNotContain("--lora-modules", args);
        Assert.Equal("True", env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"]);
    }

    [Fact]
    public async Task The_router_gets_the_catalogue_of_every_adapter_of_its_groups_written_once_at_start()
    {
        using var builder = Builder();
        var (_, _, router) = TwoModels(builder);
        // Declared after WithEngines: still in the catalogue, which is read at start.
        var gamma = builder.AddVllm<Projects.VllmStack_EngineSim>("engine-gamma", builder.AddParameter("gamma-model", "acme/Gamma-1B"));
        router.WithEngines(gamma);
        gamma.WithLoraAdapter("gamma-json", "/adapters/gamma-json");
        await using var app = await builder.BuildAsync();

        var (args, _) = await EvaluateAsync(app, router.Resource, environment: false);
        var path = ArgAfter(args, "--lora-adapters-file");
        _files.Add(path);
        Assert.DoesNotContain("--lora-adapters-configmap", args);
        // The fewest slots of the groups with adapters (alpha 2, beta vLLM's default 1), until engines report their own.
        Assert.Equal("1", ArgAfter(args, "--max-loras"));
        Assert.False(File.Exists(path), "the catalogue was written before the start");

        await app.Services.GetRequiredService<IDistributedApplicationEventing>()
            .PublishAsync(new BeforeStartEvent(app.Services, app.Services.GetRequiredService<DistributedApplicationModel>()));
        var catalogue = JsonNode.Parse(await File.ReadAllTextAsync(path))!;
        Assert.Equal("""
            {"adapters":[{"name":"alpha-sql","base_model":"acme/Alpha-1B","source":"/adapters/alpha-sql"},{"name":"alpha-chat","base_model":"acme/Alpha-1B","source":"acme/alpha-chat-lora"},{"name":"beta-sql","base_model":"acme/Beta-1B","source":"/adapters/beta-sql"},{"name":"gamma-json","base_model":"acme/Gamma-1B","source":"/adapters/gamma-json"}]}
            """, catalogue.ToJsonString());
        Assert.False(File.Exists(path + ".tmp"));
        // The engine groups' controllers started too: stopping deletes their engine lists.
        app.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
    }

    [Fact]
    public async Task A_router_whose_groups_have_no_adapters_gets_no_catalogue()
    {
        using var builder = Builder();
        var engine = builder.AddVllm<Projects.VllmStack_EngineSim>("engine", builder.AddParameter("model", "acme/Alpha-1B"));
        var router = builder.AddVllmRouter<Projects.VllmStack_Router>("router").WithEngines(engine);
        await using var app = await builder.BuildAsync();
        var (args, _) = await EvaluateAsync(app, router.Resource, environment: false);
        Assert.DoesNotContain("--lora-adapters-file", args);
        Assert.DoesNotContain("--max-loras", args);
        Assert.Equal(["--dynamic-config-json"], args.Where(a => a.StartsWith("--", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Adapters_that_one_router_cannot_tell_apart_fail_the_start()
    {
        using var builder = Builder();
        var alpha = builder.AddVllm<Projects.VllmStack_EngineSim>("engine-alpha", builder.AddParameter("alpha-model", "acme/Alpha-1B"))
            .WithLoraAdapter("sql", "/a/sql").WithLoraAdapter("acme/Beta-1B", "/a/beta");
        var beta = builder.AddVllm<Projects.VllmStack_EngineSim>("engine-beta", builder.AddParameter("beta-model", "acme/Beta-1B"))
            .WithLoraAdapter("sql", "/b/sql");
        var e = await Assert.ThrowsAsync<DistributedApplicationException>(() => LoraAdapterCatalogue.RenderAsync([alpha.Resource, beta.Resource], CancellationToken.None));
        Assert.Contains("adapter 'sql' is declared by engine groups engine-alpha, engine-beta", e.Message);
        Assert.Contains("adapter 'acme/Beta-1B' of engine group engine-alpha has the name of a model", e.Message);
    }
}
