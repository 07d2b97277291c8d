using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VllmStack.Router.Discovery;
using VllmStack.Router.Lora;
using VllmStack.Router.Stats;

namespace VllmStack.Tests.Router;

/// <summary>The LoRA adapter catalogue: its JSON, its stores (a file, a ConfigMap through a real HTTP API), its options.</summary>
public sealed class LoraCatalogTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("vllmstack-lora-catalog-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void The_catalogue_json_round_trips_and_marks_runtime_adapters()
    {
        LoraAdapter[] adapters = [new("a", "base/m", "/models/a"), new("b", "base/m", "org/b-lora", Runtime: true)];
        var text = LoraCatalogJson.Serialize(adapters);
        Assert.Equal(adapters, LoraCatalogJson.Parse(text));
        Assert.Contains("\"origin\": \"runtime\"", text);
        Assert.Empty(LoraCatalogJson.Parse("""{"adapters": [] }"""));
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[]", "\"adapters\" array")]
    [InlineData("""{"adapters": {}}""", "\"adapters\" array")]
    [InlineData("""{"adapters": [{"name": "a", "base_model": "m"}]}""", "\"source\"")]
    [InlineData("""{"adapters": [{"name": "", "base_model": "m", "source": "s"}]}""", "non-empty")]
    [InlineData("""{"adapters": [{"name": 3, "base_model": "m", "source": "s"}]}""", "non-empty")]
    [InlineData("""{"adapters": [{"name": "a", "base_model": "m", "source": "s"}, {"name": "a", "base_model": "m", "source": "t"}]}""", "twice")]
    [InlineData("""{"adapters": [{"name": "a\ud800", "base_model": "m", "source": "s"}]}""", "'name' is not valid text")]
    public void A_bad_catalogue_is_refused_with_its_reason(string json, string reason)
    {
        var error = Assert.Throws<FormatException>(() => LoraCatalogJson.Parse(json));
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Empty(new LoraOptions().Validate());
        Assert.Contains(new LoraOptions { Placement = "everywhere" }.Validate(), p => p.Contains("--lora-placement"));
        Assert.Contains(new LoraOptions { MaxLoras = 0 }.Validate(), p => p.Contains("--max-loras"));
        Assert.Contains(new LoraOptions { LoadTimeout = 0 }.Validate(), p => p.Contains("--lora-load-timeout"));
        Assert.Contains(new LoraOptions { AdaptersConfigMap = "x" }.Validate(), p => p.Contains("--lora-adapters-file"));
        Assert.Equal(LoraPlacement.OnMiss, new LoraOptions { Placement = "on-miss" }.PlacementMode);
    }

    [Fact]
    public void An_engines_adapter_slots_are_read_from_vllms_lora_info_gauge()
    {
        const string exposition = """
            vllm:num_requests_running{engine="0",model_name="m"} 1.0
            vllm:lora_requests_info{max_lora="4",running_lora_adapters="a,b",waiting_lora_adapters=""} 1.7e+09
            """;
        Assert.Equal(4, EngineStatsScraper.Read(exposition, 0, DateTimeOffset.UtcNow).MaxLoras);
        Assert.Null(EngineStatsScraper.Read("vllm:num_requests_running 0\n", 0, DateTimeOffset.UtcNow).MaxLoras);
    }

    [Fact]
    public void A_model_list_fetched_before_an_adapter_load_does_not_undo_it()
    {
        var engine = new VllmStack.Router.Engines.Engine(1, new Uri("http://127.0.0.1:1/"));
        engine.SetModels(["m"]);
        var version = engine.ModelsVersion;
        engine.AddModel(new VllmStack.Router.Engines.ModelInfo("a", "/a", "m"));
        Assert.False(engine.TrySetModels([new VllmStack.Router.Engines.ModelInfo("m")], version));
        Assert.True(engine.Serves("a"));
        Assert.Equal(["a"], engine.Adapters);
        Assert.True(engine.TrySetModels([new VllmStack.Router.Engines.ModelInfo("m")], engine.ModelsVersion));
        Assert.False(engine.Serves("a"));
    }

    [Fact]
    public async Task The_file_store_keeps_admin_changes_and_a_bad_edit_on_disk_leaves_the_catalogue_as_it_was()
    {
        var path = Path.Combine(_folder, "adapters.json");
        File.WriteAllText(path, LoraCatalogJson.Serialize([new LoraAdapter("declared", "m", "/d")]));
        var options = new LoraOptions { AdaptersFile = path };
        using var catalog = new LoraCatalog(options, new LoraCatalogFileStore(path), NullLogger<LoraCatalog>.Instance);
        List<string> removed = [];
        catalog.Changed += gone => removed.AddRange(gone.Select(a => a.Name));
        await catalog.StartAsync(CancellationToken.None);
        try
        {
            Assert.True(await catalog.AddAsync(new LoraAdapter("added", "m", "/a", Runtime: true), CancellationToken.None));
            Assert.False(await catalog.AddAsync(new LoraAdapter("added", "m", "/a", Runtime: true), CancellationToken.None));
            await Assert.ThrowsAsync<InvalidOperationException>(() => catalog.AddAsync(new LoraAdapter("added", "m", "/other"), CancellationToken.None));
            Assert.Equal(["added", "declared"], LoraCatalogJson.Parse(File.ReadAllText(path)).Select(a => a.Name).Order());
            Assert.Equal("declared", (await catalog.RemoveAsync("declared", CancellationToken.None))!.Name);
            Assert.Null(await catalog.RemoveAsync("declared", CancellationToken.None));
            Assert.Equal(["declared"], removed);
            Assert.Equal(["added"], LoraCatalogJson.Parse(File.ReadAllText(path)).Select(a => a.Name));

            File.WriteAllText(path, "{ broken");
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.Equal(["added"], catalog.Adapters.Keys);
            File.WriteAllText(path, LoraCatalogJson.Serialize([new LoraAdapter("edited", "m", "/e")]));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (!catalog.Adapters.ContainsKey("edited") && clock.Elapsed < TimeSpan.FromSeconds(15))
            {
                await Task.Delay(100);
            }
            Assert.Equal(["edited"], catalog.Adapters.Keys);
            Assert.Contains("added", removed);
        }
        finally
        {
            await catalog.StopAsync(CancellationToken.None);
        }
    }

    [Fact]
    public async Task The_file_store_reports_a_catalogue_whose_folder_is_gone_as_a_store_failure()
    {
        var path = Path.Combine(_folder, "gone", "adapters.json");
        var error = await Assert.ThrowsAsync<LoraCatalogStoreException>(() =>
            new LoraCatalogFileStore(path).SaveAsync(LoraCatalogJson.Serialize([new LoraAdapter("a", "m", "/a")]), CancellationToken.None));
        Assert.Contains(path, error.Message);
    }

    [Fact]
    public void A_catalogue_file_that_is_not_valid_stops_the_start_with_its_reason()
    {
        var path = Path.Combine(_folder, "bad.json");
        File.WriteAllText(path, """{"adapters": [{"name": "a"}]}""");
        var error = Assert.Throws<FormatException>(() =>
            new LoraCatalog(new LoraOptions { AdaptersFile = path }, new LoraCatalogFileStore(path), NullLogger<LoraCatalog>.Instance));
        Assert.Contains("base_model", error.Message);
    }

    [Fact]
    public async Task The_configmap_store_merge_patches_the_configmap_and_reports_a_refusal_with_the_api_servers_reason()
    {
        await using var api = await FakeConfigMapApi.StartAsync();
        var cluster = new KubernetesDiscoveryOptions { ApiServer = api.Address, Namespace = "serving", TokenPath = "", RequestTimeout = TimeSpan.FromSeconds(5) };
        using var store = new LoraCatalogConfigMapStore("router-lora-adapters", cluster, NullLogger<LoraCatalogConfigMapStore>.Instance);
        var json = LoraCatalogJson.Serialize([new LoraAdapter("a", "m", "/a", Runtime: true)]);

        await store.SaveAsync(json, CancellationToken.None);
        var (path, contentType, body) = Assert.Single(api.Patches);
        Assert.Equal("/api/v1/namespaces/serving/configmaps/router-lora-adapters", path);
        Assert.StartsWith("application/merge-patch+json", contentType);
        Assert.Equal(json, JsonNode.Parse(body)!["data"]![LoraCatalogConfigMapStore.Key]!.GetValue<string>());

        api.Refuse = true;
        var error = await Assert.ThrowsAsync<LoraCatalogStoreException>(() => store.SaveAsync(json, CancellationToken.None));
        Assert.Contains("403", error.Message);
        Assert.Contains("cannot patch resource", error.Message);
    }

    private sealed class FakeConfigMapApi : IAsyncDisposable
    {
        private WebApplication _app = null!;

        public Uri Address { get; private set; } = null!;

        public ConcurrentQueue<(string Path, string ContentType, string Body)> Patches { get; } = new();

        public volatile bool Refuse;

        public static async Task<FakeConfigMapApi> StartAsync()
        {
            var api = new FakeConfigMapApi();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            api._app = builder.Build();
            api._app.MapPatch("/api/v1/namespaces/{ns}/configmaps/{name}", async (HttpContext context, string ns, string name) =>
            {
                context.Response.ContentType = "application/json";
                if (api.Refuse)
                {
                    context.Response.StatusCode = 403;
                    await context.Response.WriteAsync($$"""{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"{{name}}\" is forbidden: User \"system:serviceaccount:{{ns}}:router\" cannot patch resource \"configmaps\"","reason":"Forbidden","code":403}""");
                    return;
                }
                var body = await new StreamReader(context.Request.Body).ReadToEndAsync();
                api.Patches.Enqueue((context.Request.Path, context.Request.ContentType ?? "", body));
                await context.Response.WriteAsync(new JsonObject
                {
                    ["kind"] = "ConfigMap", ["apiVersion"] = "v1",
                    ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns },
                    ["data"] = new JsonObject(),
                }.ToJsonString());
            });
            await api._app.StartAsync();
            api.Address = new Uri(api._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
            return api;
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}
