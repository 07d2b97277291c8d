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
    public async Task An_admin_change_stored_in_a_configmap_is_not_undone_while_the_mounted_file_still_shows_the_old_catalogue()
    {
        var path = Path.Combine(_folder, "mounted.json");
        File.WriteAllText(path, LoraCatalogJson.Serialize([new LoraAdapter("declared", "m", "/d")]));
        // As the ConfigMap store: the change goes elsewhere, and the mounted file shows it only when the kubelet syncs.
        var store = new LaggingStore();
        using var catalog = new LoraCatalog(new LoraOptions { AdaptersFile = path }, store, NullLogger<LoraCatalog>.Instance);
        await catalog.StartAsync(CancellationToken.None);
        try
        {
            Assert.True(await catalog.AddAsync(new LoraAdapter("added", "m", "/a", Runtime: true), CancellationToken.None));
            await Task.Delay(TimeSpan.FromSeconds(4.5)); // two polls of the unchanged file
            Assert.Equal(["added", "declared"], catalog.Adapters.Keys.Order());
            File.WriteAllText(path, store.Saved!); // the kubelet syncs
            await Task.Delay(TimeSpan.FromSeconds(2.5));
            Assert.Equal(["added", "declared"], catalog.Adapters.Keys.Order());
        }
        finally
        {
            await catalog.StopAsync(CancellationToken.None);
        }
    }

    private sealed class LaggingStore : ILoraCatalogStore
    {
        public string? Saved { get; private set; }

        public Task<IReadOnlyList<LoraAdapter>> UpdateAsync(IReadOnlyList<LoraAdapter> current,
            Func<IReadOnlyList<LoraAdapter>, IReadOnlyList<LoraAdapter>> change, CancellationToken cancellationToken)
        {
            var next = change(Saved is null ? current : LoraCatalogJson.Parse(Saved));
            Saved = LoraCatalogJson.Serialize(next);
            return Task.FromResult(next);
        }
    }

    [Fact]
    public async Task The_file_store_reports_a_catalogue_whose_folder_is_gone_as_a_store_failure()
    {
        var path = Path.Combine(_folder, "gone", "adapters.json");
        var error = await Assert.ThrowsAsync<LoraCatalogStoreException>(() =>
            new LoraCatalogFileStore(path).UpdateAsync([], stored => [.. stored, new LoraAdapter("a", "m", "/a")], CancellationToken.None));
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
    public async Task The_configmap_store_changes_the_configmap_without_losing_a_concurrent_change_and_reports_a_refusal()
    {
        await using var api = await FakeConfigMapApi.StartAsync(LoraCatalogJson.Serialize([new LoraAdapter("declared", "m", "/d")]));
        var cluster = new KubernetesDiscoveryOptions { ApiServer = api.Address, Namespace = "serving", TokenPath = "", RequestTimeout = TimeSpan.FromSeconds(5) };
        using var one = new LoraCatalogConfigMapStore("router-lora-adapters", cluster, NullLogger<LoraCatalogConfigMapStore>.Instance);
        using var other = new LoraCatalogConfigMapStore("router-lora-adapters", cluster, NullLogger<LoraCatalogConfigMapStore>.Instance);

        // Two routers add an adapter each while the other's change lands between its read and its write.
        api.ChangeBeforeNextReplace = () => other.UpdateAsync([], stored => [.. stored, new LoraAdapter("b", "m", "/b", Runtime: true)], CancellationToken.None);
        var result = await one.UpdateAsync([], stored => [.. stored, new LoraAdapter("a", "m", "/a", Runtime: true)], CancellationToken.None);
        Assert.Equal(["a", "b", "declared"], result.Select(a => a.Name).Order());
        Assert.Equal(["a", "b", "declared"], LoraCatalogJson.Parse(api.Stored).Select(a => a.Name).Order());
        Assert.True(api.Conflicts >= 1);

        api.Refuse = true;
        var error = await Assert.ThrowsAsync<LoraCatalogStoreException>(() => one.UpdateAsync([], stored => stored, CancellationToken.None));
        Assert.Contains("403", error.Message);
        Assert.Contains("cannot update resource", error.Message);
    }

    /// <summary>The API server's ConfigMap read and replace, with <c>resourceVersion</c> checked as the API server does (409 when stale).</summary>
    private sealed class FakeConfigMapApi : IAsyncDisposable
    {
        private readonly Lock _lock = new();
        private WebApplication _app = null!;
        private int _version = 1;

        public Uri Address { get; private set; } = null!;

        public string Stored { get; private set; } = "";

        public int Conflicts { get; private set; }

        public volatile bool Refuse;

        /// <summary>Run once, before the next replace is answered: another writer's whole change.</summary>
        public Func<Task>? ChangeBeforeNextReplace { get; set; }

        public static async Task<FakeConfigMapApi> StartAsync(string initial)
        {
            var api = new FakeConfigMapApi { Stored = initial };
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            api._app = builder.Build();
            const string route = "/api/v1/namespaces/{ns}/configmaps/{name}";
            api._app.MapGet(route, (HttpContext context, string ns, string name) => api.WriteAsync(context, ns, name));
            api._app.MapPut(route, async (HttpContext context, string ns, string name) =>
            {
                if (api.Refuse)
                {
                    context.Response.StatusCode = 403;
                    context.Response.ContentType = "application/json";
                    await context.Response.WriteAsync(new JsonObject
                    {
                        ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Failure", ["reason"] = "Forbidden", ["code"] = 403,
                        ["message"] = $"configmaps \"{name}\" is forbidden: User \"system:serviceaccount:{ns}:router\" cannot update resource \"configmaps\"",
                    }.ToJsonString());
                    return;
                }
                var body = JsonNode.Parse(await new StreamReader(context.Request.Body).ReadToEndAsync())!;
                if (Interlocked.Exchange(ref api._pending, null) is { } other)
                {
                    await other();
                }
                lock (api._lock)
                {
                    if (body["metadata"]?["resourceVersion"]?.GetValue<string>() != api._version.ToString(System.Globalization.CultureInfo.InvariantCulture))
                    {
                        api.Conflicts++;
                        context.Response.StatusCode = 409;
                        return;
                    }
                    api.Stored = body["data"]![LoraCatalogConfigMapStore.Key]!.GetValue<string>();
                    api._version++;
                }
                await api.WriteAsync(context, ns, name);
            });
            await api._app.StartAsync();
            api.Address = new Uri(api._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
            return api;
        }

        private Func<Task>? _pending;

        private Task WriteAsync(HttpContext context, string ns, string name)
        {
            if (ChangeBeforeNextReplace is { } change)
            {
                ChangeBeforeNextReplace = null;
                _pending = change;
            }
            string json;
            lock (_lock)
            {
                json = new JsonObject
                {
                    ["kind"] = "ConfigMap", ["apiVersion"] = "v1",
                    ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns, ["resourceVersion"] = _version.ToString(System.Globalization.CultureInfo.InvariantCulture) },
                    ["data"] = new JsonObject { [LoraCatalogConfigMapStore.Key] = Stored },
                }.ToJsonString();
            }
            context.Response.ContentType = "application/json";
            return context.Response.WriteAsync(json);
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}
