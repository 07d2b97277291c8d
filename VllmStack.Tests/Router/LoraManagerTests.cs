using System.ClientModel;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Router;

/// <summary>
/// The router's LoRA adapter manager (Router/Lora) against real EngineSim engines with runtime LoRA updating and a
/// real router process: adapters loaded where the demand is, LRU unloads at --max-loras, the admin API, load failures
/// not blamed on engines, a restarted engine getting its adapters back, a hot adapter spread over more engines.
/// </summary>
public sealed class LoraManagerTests : IDisposable
{
    private const string BaseModel = EngineSimProcess.DefaultModel;
    private static readonly Dictionary<string, string> RuntimeLora = new() { ["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True" };

    private readonly LoraAdapterFiles _files = new();

    public void Dispose() => _files.Dispose();

    /// <summary>A catalogue file of <paramref name="count"/> adapters <c>lora-0</c>… that exist on disk.</summary>
    private string Catalogue(int count, params (string Name, string Source)[] extra)
    {
        var adapters = new JsonArray();
        foreach (var (name, source) in Enumerable.Range(0, count).Select(i => ($"lora-{i}", _files.Create($"lora-{i}"))).Concat(extra))
        {
            adapters.Add(new JsonObject { ["name"] = name, ["base_model"] = BaseModel, ["source"] = source });
        }
        var path = Path.Combine(_files.Root, "adapters.json");
        File.WriteAllText(path, new JsonObject { ["adapters"] = adapters }.ToJsonString());
        return path;
    }

    private static async Task<(EngineSimProcess[] Engines, RouterProcess Router)> StartAsync(int engines, string catalogue, string[]? engineArgs = null, params string[] routerArgs)
    {
        var started = await Task.WhenAll(Enumerable.Range(0, engines).Select(_ => EngineSimProcess.StartAsync(
            ["--latency-preset", "fast", "--enable-lora", "--max-loras", "2", .. engineArgs ?? []], RuntimeLora)));
        var router = await RouterProcess.StartAsync(["--static-backends", string.Join(',', started.Select(e => e.BaseUrl)), "--routing-logic", "leastload",
            "--lora-adapters-file", catalogue, "--max-loras", "2", "--Router:Lora:ReconcileInterval=0.5", .. routerArgs]);
        await router.WaitForEnginesAsync(e => e.Count(x => x!["routable"]!.GetValue<bool>()) == engines, TimeSpan.FromSeconds(15), $"{engines} routable engines");
        return (started, router);
    }

    private static async Task<JsonArray> AdaptersAsync(RouterProcess router) =>
        JsonNode.Parse(await router.Http.GetStringAsync("admin/lora_adapters"))!["data"]!.AsArray();

    private static async Task<int> CompleteAsync(RouterProcess router, string model)
    {
        var (status, _) = await OpenAiHttp.PostJsonAsync(router.Http, "v1/completions", new { model, prompt = "hello", max_tokens = 2 });
        return status;
    }

    private static double Counter(IReadOnlyList<PrometheusSample> samples, string name, params (string Label, string Value)[] labels) => samples.Sum(name, labels);

    [Fact]
    public async Task Six_adapters_over_two_engines_with_two_slots_are_all_served_and_no_engine_holds_more_than_its_slots()
    {
        var (engines, router) = await StartAsync(2, Catalogue(6));
        try
        {
            var client = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(router.BaseUrl, "v1") });
            // Two passes over all six: the second pass finds most adapters unloaded again (4 slots for 6 adapters).
            for (var pass = 0; pass < 2; pass++)
            {
                for (var i = 0; i < 6; i++)
                {
                    var completion = (await client.GetChatClient($"lora-{i}").CompleteChatAsync([new UserChatMessage("hi")], new ChatCompletionOptions { MaxOutputTokenCount = 2 })).Value;
                    Assert.Equal($"lora-{i}", completion.Model);
                    foreach (var engine in engines)
                    {
                        var models = JsonNode.Parse(await engine.Http.GetStringAsync("v1/models"))!["data"]!.AsArray();
                        Assert.True(models.Count(m => m!["parent"] is not null) <= 2, $"an engine holds more than its 2 slots: {models.ToJsonString()}");
                    }
                }
            }
            var metrics = await router.MetricsAsync();
            Assert.True(Counter(metrics, "vllmstack:router_lora_adapter_loads_total", ("reason", "demand"), ("outcome", "ok")) >= 6);
            Assert.True(Counter(metrics, "vllmstack:router_lora_adapter_unloads_total", ("reason", "lru")) >= 2);
            Assert.Equal(12, Counter(metrics, "vllmstack:router_lora_requests_total"));
            Assert.True(Counter(metrics, "vllmstack:router_lora_load_waits_total") >= 6);
            Assert.Contains(metrics, s => s.Name == "vllmstack:router_lora_adapter_load_duration_seconds_count" && s.Value >= 6);
            // /v1/models lists every catalogued adapter with its base model as parent, loaded or not.
            var listed = JsonNode.Parse(await router.Http.GetStringAsync("v1/models"))!["data"]!.AsArray();
            for (var i = 0; i < 6; i++)
            {
                Assert.Contains(listed, m => m!["id"]!.GetValue<string>() == $"lora-{i}" && m["parent"]!.GetValue<string>() == BaseModel);
            }
            Assert.Equal(404, await CompleteAsync(router, "no-such-adapter"));
        }
        finally
        {
            await RoutedEngines.StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task When_every_slot_is_taken_the_adapter_idle_longest_in_the_whole_pool_is_the_one_unloaded()
    {
        var (engines, router) = await StartAsync(2, Catalogue(5));
        try
        {
            for (var i = 0; i < 4; i++)
            {
                Assert.Equal(200, await CompleteAsync(router, $"lora-{i}"));
            }
            // Past the second in which a just-loaded adapter is kept for the requests that waited for it.
            await Task.Delay(TimeSpan.FromSeconds(1.5));
            // lora-3 is now the one idle longest, wherever it is; the others were just used.
            foreach (var name in new[] { "lora-0", "lora-1", "lora-2" })
            {
                Assert.Equal(200, await CompleteAsync(router, name));
            }
            Assert.Equal(200, await CompleteAsync(router, "lora-4"));
            var loaded = (await AdaptersAsync(router)).Where(a => a!["engines"]!.AsArray().Count > 0).Select(a => a!["name"]!.GetValue<string>()).Order();
            Assert.Equal(["lora-0", "lora-1", "lora-2", "lora-4"], loaded);
        }
        finally
        {
            await RoutedEngines.StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task A_cold_adapter_whose_chosen_engine_died_unnoticed_is_loaded_onto_another_engine()
    {
        // Health probes far apart: the router has not noticed the death when the request comes.
        var (engines, router) = await StartAsync(2, Catalogue(2), null, "--Router:HealthProbeInterval=60");
        try
        {
            Assert.Equal(200, await CompleteAsync(router, "lora-1"));
            var holder = (await AdaptersAsync(router)).Single(a => a!["name"]!.GetValue<string>() == "lora-1")!["engines"]![0]!.GetValue<string>();
            // The engine without adapters is where a cold adapter goes first (fewer adapters): kill that one.
            var dead = engines.Single(e => e.BaseUrl.ToString() != holder);
            dead.Kill();
            Assert.Equal(200, await CompleteAsync(router, "lora-0"));
            var lora0 = (await AdaptersAsync(router)).Single(a => a!["name"]!.GetValue<string>() == "lora-0")!;
            Assert.Equal([holder], lora0["engines"]!.AsArray().Select(e => e!.GetValue<string>()));
        }
        finally
        {
            await RoutedEngines.StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task A_catalogue_entry_named_like_a_served_base_model_does_not_take_its_requests_over()
    {
        // An entry (a hand edit) naming the served model as an adapter of another base model.
        var path = Path.Combine(_files.Root, "impostor.json");
        File.WriteAllText(path, new JsonObject
        {
            ["adapters"] = new JsonArray(new JsonObject { ["name"] = BaseModel, ["base_model"] = "other-org/other-model", ["source"] = _files.Create("impostor") }),
        }.ToJsonString());
        var (engines, router) = await StartAsync(1, path);
        try
        {
            Assert.Equal(200, await CompleteAsync(router, BaseModel));
            Assert.Equal(0, Counter(await router.MetricsAsync(), "vllmstack:router_lora_adapter_loads_total"));
        }
        finally
        {
            await RoutedEngines.StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task An_adapter_whose_source_is_missing_gets_a_clear_503_and_its_engine_is_not_blamed()
    {
        var (engines, router) = await StartAsync(1, Catalogue(0, ("broken", "/does/not/exist/adapter")));
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var (status, body) = await OpenAiHttp.PostJsonAsync(router.Http, "v1/completions", new { model = "broken", prompt = "x", max_tokens = 2 });
                Assert.Equal(503, status);
                Assert.Equal("lora_adapter_load_failed", body!["error"]!["code"]!.GetValue<string>());
                Assert.Contains("/does/not/exist/adapter", body["error"]!["message"]!.GetValue<string>());
            }
            var engine = (await router.WaitForEnginesAsync(_ => true, TimeSpan.FromSeconds(5), "engines"))["engines"]![0]!;
            Assert.True(engine["routable"]!.GetValue<bool>());
            Assert.Equal(0, engine["consecutive_5xx"]!.GetValue<int>());
            // Remembered: the three requests made one load, not three.
            Assert.Equal(1, Counter(await router.MetricsAsync(), "vllmstack:router_lora_adapter_loads_total", ("outcome", "failed")));
            Assert.Equal(200, await CompleteAsync(router, BaseModel));
        }
        finally
        {
            await RoutedEngines.StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task An_adapter_added_through_the_admin_api_is_routable_at_once_and_kept_in_the_catalogue_file_until_deleted()
    {
        var catalogue = Catalogue(1);
        var (engines, router) = await StartAsync(2, catalogue, null, "--admin-api-key", "admin-secret");
        try
        {
            using var admin = new HttpClient { BaseAddress = router.BaseUrl, Timeout = TimeSpan.FromSeconds(60) };
            admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "admin-secret");
            var source = _files.Create("added-at-runtime");
            var adapter = new { name = "runtime-lora", base_model = BaseModel, source };

            // Without the admin key, the admin API stays shut (clients need no key here).
            Assert.Equal(401, (int)(await router.Http.PostAsJsonAsync("admin/lora_adapters", adapter)).StatusCode);
            Assert.Equal(404, await CompleteAsync(router, "runtime-lora"));

            using (var created = await admin.PostAsJsonAsync("admin/lora_adapters", adapter))
            {
                Assert.Equal(201, (int)created.StatusCode);
            }
            using (var again = await admin.PostAsJsonAsync("admin/lora_adapters", adapter))
            {
                Assert.Equal(200, (int)again.StatusCode);
            }
            using (var clash = await admin.PostAsJsonAsync("admin/lora_adapters", adapter with { source = "/elsewhere" }))
            {
                Assert.Equal(409, (int)clash.StatusCode);
            }
            using (var baseName = await admin.PostAsJsonAsync("admin/lora_adapters", new { name = BaseModel, base_model = BaseModel, source }))
            {
                Assert.Equal(409, (int)baseName.StatusCode);
            }
            using (var unknownBase = await admin.PostAsJsonAsync("admin/lora_adapters", new { name = "x", base_model = "no/such-model", source }))
            {
                Assert.Equal(400, (int)unknownBase.StatusCode);
                Assert.Equal("base_model", JsonNode.Parse(await unknownBase.Content.ReadAsStringAsync())!["error"]!["param"]!.GetValue<string>());
            }
            var (badStatus, badBody) = await OpenAiHttp.PostRawAsync(admin, "admin/lora_adapters", "{not json");
            Assert.Equal(400, badStatus);
            Assert.NotNull(badBody!["error"]!["message"]);

            Assert.Equal(200, await CompleteAsync(router, "runtime-lora"));
            Assert.Contains("runtime-lora", File.ReadAllText(catalogue));
            var listed = JsonNode.Parse(await admin.GetStringAsync("admin/lora_adapters"))!["data"]!.AsArray();
            var entry = listed.Single(a => a!["name"]!.GetValue<string>() == "runtime-lora")!;
            Assert.Equal("runtime", entry["origin"]!.GetValue<string>());
            Assert.Single(entry["engines"]!.AsArray());
            Assert.Equal("declared", listed.Single(a => a!["name"]!.GetValue<string>() == "lora-0")!["origin"]!.GetValue<string>());

            using (var deleted = await admin.DeleteAsync("admin/lora_adapters/runtime-lora"))
            {
                Assert.Equal(200, (int)deleted.StatusCode);
            }
            Assert.Equal(404, (int)(await admin.DeleteAsync("admin/lora_adapters/runtime-lora")).StatusCode);
            Assert.DoesNotContain("runtime-lora", File.ReadAllText(catalogue));
            await WaitUntilAsync(async () => await Task.WhenAll(engines.Select(async e => !(await e.Http.GetStringAsync("v1/models")).Contains("runtime-lora")))
                is var gone && gone.All(g => g), TimeSpan.FromSeconds(10), "the deleted adapter unloaded from every engine");
            Assert.Equal(404, await CompleteAsync(router, "runtime-lora"));
        }
        finally
        {
            await RoutedEngines.StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task Hostile_admin_requests_and_catalogue_edits_get_4xx_answers_and_leave_the_router_serving()
    {
        var catalogue = Catalogue(1);
        var (engines, router) = await StartAsync(1, catalogue);
        try
        {
            async Task<(int Status, string? Param)> AddAsync(HttpContent content)
            {
                using var response = await router.Http.PostAsync("admin/lora_adapters", content);
                var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"];
                return ((int)response.StatusCode, error?["param"]?.GetValue<string>());
            }
            StringContent Json(string text) => new(text, System.Text.Encoding.UTF8, "application/json");
            var source = _files.Create("org-lora");

            // Half a surrogate pair parses as JSON but is no text: 400, not the router's 500.
            Assert.Equal(400, (await AddAsync(Json($$"""{"name": "a\ud800", "base_model": "{{BaseModel}}", "source": "{{source}}"}"""))).Status);
            Assert.Equal((400, "name"), await AddAsync(Json($$"""{"name": "a\u0001", "base_model": "{{BaseModel}}", "source": "{{source}}"}""")));
            // A chunked body (no length declared) over the limit is refused without reading it all.
            var huge = new StreamContent(new MemoryStream(new byte[1024 * 1024]));
            huge.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            Assert.Equal(413, (await AddAsync(huge)).Status);

            // A Hugging Face style name with '/' can be added, served and deleted as it is spelled.
            Assert.Equal(201, (await AddAsync(Json($$"""{"name": "org/lora", "base_model": "{{BaseModel}}", "source": "{{source}}"}"""))).Status);
            Assert.Equal(200, await CompleteAsync(router, "org/lora"));
            using (var deleted = await router.Http.DeleteAsync("admin/lora_adapters/org/lora"))
            {
                Assert.Equal(200, (int)deleted.StatusCode);
            }
            Assert.Equal(404, await CompleteAsync(router, "org/lora"));

            // A hand edit that breaks the catalogue in the same way is logged and ignored; the router keeps serving.
            File.WriteAllText(catalogue, $$"""{"adapters": [{"name": "x\ud800", "base_model": "{{BaseModel}}", "source": "{{source}}"}]}""");
            await Task.Delay(TimeSpan.FromSeconds(5)); // the file is polled every 2 s
            Assert.Equal(200, await CompleteAsync(router, "lora-0"));
            Assert.Single(await AdaptersAsync(router));

            // The catalogue's folder removed: the admin change is refused with 503 (not stored), not a 500.
            Directory.Delete(_files.Root, recursive: true);
            Assert.Equal(503, (await AddAsync(Json($$"""{"name": "late", "base_model": "{{BaseModel}}", "source": "{{source}}"}"""))).Status);
        }
        finally
        {
            await RoutedEngines.StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task When_the_only_engine_holding_an_adapter_dies_a_request_for_it_is_placed_on_another_engine()
    {
        var catalogue = Catalogue(1);
        // Probes far apart: the router learns of the death from the request itself, not from a probe.
        var (engines, router) = await StartAsync(2, catalogue, null, "--Router:HealthProbeInterval=30");
        try
        {
            Assert.Equal(200, await CompleteAsync(router, "lora-0"));
            var holder = (await AdaptersAsync(router)).Single()!["engines"]!.AsArray().Single()!.GetValue<string>();
            var dead = engines.Single(e => holder.StartsWith(e.BaseUrl.ToString().TrimEnd('/'), StringComparison.Ordinal));
            dead.Kill();

            Assert.Equal(200, await CompleteAsync(router, "lora-0"));
            var other = engines.Single(e => e != dead).BaseUrl.ToString().TrimEnd('/');
            Assert.Contains((await AdaptersAsync(router)).Single()!["engines"]!.AsArray(), e => e!.GetValue<string>().StartsWith(other, StringComparison.Ordinal));
            // The dead engine failed a request of the adapter: ejected, judged among the engines of the base model (two, of
            // which one may be ejected), not among the adapter's holders (one, of which none may be).
            var listed = JsonNode.Parse(await router.Http.GetStringAsync("engines"))!["engines"]!.AsArray();
            Assert.Equal("ejected", listed.Single(e => e!["url"]!.GetValue<string>() == holder)!["health"]!.GetValue<string>());
        }
        finally
        {
            await RoutedEngines.StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task A_catalogue_file_changed_on_disk_is_picked_up_without_a_restart()
    {
        var catalogue = Catalogue(1);
        var (engines, router) = await StartAsync(1, catalogue);
        try
        {
            Assert.Equal(404, await CompleteAsync(router, "lora-late"));
            var late = _files.Create("lora-late");
            File.WriteAllText(catalogue, new JsonObject
            {
                ["adapters"] = new JsonArray(new JsonObject { ["name"] = "lora-late", ["base_model"] = BaseModel, ["source"] = late }),
            }.ToJsonString());
            await WaitUntilAsync(async () => await CompleteAsync(router, "lora-late") == 200, TimeSpan.FromSeconds(15), "lora-late served");
            Assert.Equal(404, await CompleteAsync(router, "lora-0"));
        }
        finally
        {
            await RoutedEngines.StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task An_engine_that_restarts_gets_its_adapters_back_without_a_request()
    {
        var (engines, router) = await StartAsync(1, Catalogue(2));
        EngineSimProcess? restarted = null;
        try
        {
            Assert.Equal(200, await CompleteAsync(router, "lora-0"));
            Assert.Equal(200, await CompleteAsync(router, "lora-1"));
            // Let the placements settle (a model refresh and a control call), as the manager requires before it judges a loss.
            await Task.Delay(TimeSpan.FromSeconds(4));
            restarted = await RestartAsync(engines[0]);
            await WaitForBothAdaptersAsync(restarted, router);
            Assert.Equal(2, Counter(await router.MetricsAsync(), "vllmstack:router_lora_adapter_loads_total", ("reason", "restore"), ("outcome", "ok")));
        }
        finally
        {
            await router.DisposeAsync();
            if (restarted is not null)
            {
                await restarted.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task An_engine_that_restarts_just_after_a_load_gets_that_adapter_back_too()
    {
        var (engines, router) = await StartAsync(1, Catalogue(2));
        EngineSimProcess? restarted = null;
        try
        {
            Assert.Equal(200, await CompleteAsync(router, "lora-0"));
            await Task.Delay(TimeSpan.FromSeconds(4)); // lora-0's placement is settled (0.5 s refresh + 2 s control timeout)…
            Assert.Equal(200, await CompleteAsync(router, "lora-1")); // …lora-1's is not when the engine goes
            restarted = await RestartAsync(engines[0]);
            await WaitForBothAdaptersAsync(restarted, router);
        }
        finally
        {
            await router.DisposeAsync();
            if (restarted is not null)
            {
                await restarted.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_request_that_reaches_an_engine_which_lost_its_adapter_gets_it_loaded_again_instead_of_a_404()
    {
        // Slow refreshes and reconciliation: the router still believes the restarted engine holds the adapter.
        var (engines, router) = await StartAsync(1, Catalogue(1), null, "--Router:ModelRefreshInterval=60", "--Router:Lora:ReconcileInterval=60");
        EngineSimProcess? restarted = null;
        try
        {
            Assert.Equal(200, await CompleteAsync(router, "lora-0"));
            restarted = await RestartAsync(engines[0]);
            var answers = new List<int>();
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(30) && (answers.Count == 0 || answers[^1] != 200))
            {
                answers.Add(await CompleteAsync(router, "lora-0"));
                await Task.Delay(100);
            }
            Assert.Equal(200, answers[^1]);
            Assert.DoesNotContain(404, answers);
            Assert.Contains("\"lora-0\"", await restarted.Http.GetStringAsync("v1/models"));
            Assert.True(Counter(await router.MetricsAsync(), "vllmstack:router_retries_total", ("reason", "lora_adapter_missing")) >= 1);
        }
        finally
        {
            await router.DisposeAsync();
            if (restarted is not null)
            {
                await restarted.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_hot_adapter_is_loaded_onto_another_engine_as_its_load_grows()
    {
        var (engines, router) = await StartAsync(2, Catalogue(1), ["--inter-token-latency-ms", "20", "--max-num-seqs", "4"]);
        try
        {
            Assert.Equal(200, await CompleteAsync(router, "lora-0"));
            // 24 long requests at once: the one holder far busier than the idle engine (guard 4 requests, ×2).
            var burst = Enumerable.Range(0, 24).Select(_ => OpenAiHttp.PostJsonAsync(router.Http, "v1/completions",
                new { model = "lora-0", prompt = "hello", max_tokens = 60, ignore_eos = true })).ToList();
            await WaitUntilAsync(async () => (await AdaptersAsync(router)).Single()!["engines"]!.AsArray().Count == 2,
                TimeSpan.FromSeconds(30), "lora-0 on both engines");
            var results = await Task.WhenAll(burst);
            Assert.All(results, r => Assert.Equal(200, r.Status));
            Assert.True(Counter(await router.MetricsAsync(), "vllmstack:router_lora_adapter_loads_total", ("reason", "replicate"), ("outcome", "ok")) >= 1);
        }
        finally
        {
            await RoutedEngines.StopAsync(engines, router);
        }
    }

    [Fact]
    public async Task On_miss_placement_loads_the_adapter_wherever_the_request_lands()
    {
        var (engines, router) = await StartAsync(2, Catalogue(1), null, "--lora-placement", "on-miss", "--routing-logic", "roundrobin");
        try
        {
            for (var i = 0; i < 4; i++)
            {
                Assert.Equal(200, await CompleteAsync(router, "lora-0"));
            }
            Assert.Equal(2, (await AdaptersAsync(router)).Single()!["engines"]!.AsArray().Count);
            Assert.Equal(2, Counter(await router.MetricsAsync(), "vllmstack:router_lora_adapter_loads_total", ("reason", "on_miss"), ("outcome", "ok")));
        }
        finally
        {
            await RoutedEngines.StopAsync(engines, router);
        }
    }

    /// <summary>Kills the engine as a crash would and starts it again on its port, without any adapter.</summary>
    private static async Task<EngineSimProcess> RestartAsync(EngineSimProcess engine)
    {
        var port = engine.BaseUrl.Port;
        engine.Kill();
        await engine.DisposeAsync();
        return await EngineSimProcess.StartAsync(["--latency-preset", "fast", "--enable-lora", "--max-loras", "2"], RuntimeLora, port: port);
    }

    private static Task WaitForBothAdaptersAsync(EngineSimProcess engine, RouterProcess router) => WaitUntilAsync(async () =>
    {
        var models = await engine.Http.GetStringAsync("v1/models");
        return models.Contains("\"lora-0\"") && models.Contains("\"lora-1\"");
    }, TimeSpan.FromSeconds(30), "both adapters loaded again onto the restarted engine", router);

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, RouterProcess? router = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (await condition())
            {
                return;
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"Never saw {what} within {timeout}.{(router is null ? "" : "\n" + router.Output)}");
    }
}
