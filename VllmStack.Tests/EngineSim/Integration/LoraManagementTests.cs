using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.EngineSim.Integration;

/// <summary>
/// An engine with runtime LoRA updating, one static adapter, and a folder standing for the Hugging Face hub:
/// what a LoRA manager meets when it loads adapters that exist and adapters that do not.
/// </summary>
public sealed class LoraEngineFixture : IAsyncLifetime
{
    public LoraAdapterFiles Adapters { get; } = new();

    public EngineSimProcess Sim { get; private set; } = null!;

    public string HubDirectory => Path.Combine(Adapters.Root, "hub");

    public async Task InitializeAsync()
    {
        Adapters.Create("hub/test-org/present-adapter");
        Sim = await EngineSimProcess.StartAsync(
            ["--latency-preset", "instant", "--enable-lora", "--max-loras", "2", "--lora-hub-dir", HubDirectory, "--lora-modules", $"static-adapter={Adapters.Create("static")}"],
            new Dictionary<string, string> { ["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "true" });
    }

    public async Task DisposeAsync()
    {
        await Sim.DisposeAsync();
        Adapters.Dispose();
    }
}

/// <summary>LoRA loading and unloading as vLLM 0.11's OpenAIServingModels answers it (serving_models.py).</summary>
public sealed class LoraManagementTests(LoraEngineFixture fixture) : IClassFixture<LoraEngineFixture>
{
    private HttpClient Http => fixture.Sim.Http;

    private static (string Message, string Type) Error(JsonNode? body) =>
        (body!["error"]!["message"]!.GetValue<string>(), body["error"]!["type"]!.GetValue<string>());

    private Task<(int Status, JsonNode? Body)> LoadAsync(string name, string path) =>
        LoraHttp.PostAsync(Http, "v1/load_lora_adapter", new { lora_name = name, lora_path = path });

    [Fact]
    public async Task A_path_that_does_not_exist_is_vllms_404_and_the_adapter_is_not_served()
    {
        var (status, body) = await LoadAsync("ghost", "/does/not/exist");
        Assert.Equal(404, status);
        Assert.Equal(("Call to add_lora method failed: Loading lora ghost failed: No adapter found for /does/not/exist", "NotFoundError"), Error(body));
        var (served, _) = await OpenAiHttp.PostJsonAsync(Http, "v1/completions", new { model = "ghost", prompt = "x", max_tokens = 1 });
        Assert.Equal(404, served);
    }

    [Fact]
    public async Task A_directory_without_its_config_is_not_found_and_an_unusable_adapter_is_a_400()
    {
        var empty = Directory.CreateDirectory(Path.Combine(fixture.Adapters.Root, "empty")).FullName;
        var (status, body) = await LoadAsync("empty", empty);
        Assert.Equal(404, status);
        Assert.EndsWith($"No adapter found for {empty}", Error(body).Message);

        var (rankStatus, rankBody) = await LoadAsync("wide", fixture.Adapters.Create("wide", rank: 64));
        Assert.Equal(400, rankStatus);
        Assert.Equal(("Call to add_lora method failed: LoRA rank 64 is greater than max_lora_rank 16.", "BadRequestError"), Error(rankBody));

        var weightless = fixture.Adapters.Create("weightless");
        File.Delete(Path.Combine(weightless, "adapter_model.safetensors"));
        var (tensorStatus, tensorBody) = await LoadAsync("weightless", weightless);
        Assert.Equal(400, tensorStatus);
        Assert.Equal($"Call to add_lora method failed: {weightless} doesn't contain tensors", Error(tensorBody).Message);
    }

    [Fact]
    public async Task Repository_ids_resolve_through_the_simulated_hub()
    {
        Assert.Equal(200, (await LoadAsync("from-hub", "test-org/present-adapter")).Status);
        var (status, body) = await LoadAsync("not-on-hub", "test-org/absent-adapter");
        Assert.Equal(404, status);
        Assert.EndsWith("No adapter found for test-org/absent-adapter", Error(body).Message);
    }

    [Fact]
    public async Task Duplicates_empty_and_missing_fields_get_vllms_status_and_type()
    {
        var path = fixture.Adapters.Create("twice");
        Assert.Equal(200, (await LoadAsync("twice", path)).Status);
        var (again, againBody) = await LoadAsync("twice", path);
        Assert.Equal(400, again);
        Assert.Equal(("The lora adapter 'twice' has already been loaded.", "InvalidUserInput"), Error(againBody));

        var (empty, emptyBody) = await LoadAsync("", path);
        Assert.Equal(400, empty);
        Assert.Equal(("Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput"), Error(emptyBody));

        var (missing, missingBody) = await LoraHttp.PostAsync(Http, "v1/load_lora_adapter", new { lora_name = "no-path" });
        Assert.Equal(400, missing);
        Assert.Equal("Bad Request", Error(missingBody).Type);
        Assert.Contains("lora_path", Error(missingBody).Message);

        var (unknown, unknownBody) = await LoraHttp.PostAsync(Http, "v1/unload_lora_adapter", new { lora_name = "never-loaded" });
        Assert.Equal(404, unknown);
        Assert.Equal(("The lora adapter 'never-loaded' cannot be found.", "NotFoundError"), Error(unknownBody));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("text/plain")]
    public async Task The_lora_routes_want_a_json_content_type(string? contentType)
    {
        foreach (var route in new[] { "v1/load_lora_adapter", "v1/unload_lora_adapter" })
        {
            using var content = new ByteArrayContent(Encoding.UTF8.GetBytes("""{"lora_name": "typed", "lora_path": "/does/not/matter"}"""));
            if (contentType is not null)
            {
                content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
            }
            using var response = await Http.PostAsync(route, content);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var error = Error(JsonNode.Parse(await response.Content.ReadAsStringAsync()));
            Assert.Equal(("[\"Unsupported Media Type: Only 'application/json' is allowed\"]", "Bad Request"), error);
        }
    }

    [Fact]
    public async Task Models_lists_adapters_in_load_order()
    {
        Assert.Equal(200, (await LoadAsync("zz-first", fixture.Adapters.Create("zz"))).Status);
        Assert.Equal(200, (await LoadAsync("aa-second", fixture.Adapters.Create("aa"))).Status);
        var ids = JsonNode.Parse(await Http.GetStringAsync("v1/models"))!["data"]!.AsArray().Select(m => m!["id"]!.GetValue<string>()).ToList();
        Assert.Equal(EngineSimProcess.DefaultModel, ids[0]);
        Assert.Equal("static-adapter", ids[1]);
        Assert.True(ids.IndexOf("zz-first") < ids.IndexOf("aa-second"), string.Join(", ", ids));
    }
}

/// <summary>The LoRA surface under other settings: each starts its own engine.</summary>
public sealed class LoraSettingsTests
{
    private static readonly Dictionary<string, string> RuntimeLora = new() { ["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "true" };

    [Fact]
    public async Task The_variable_alone_registers_the_routes_and_without_enable_lora_a_load_fails_in_the_engine()
    {
        using var adapters = new LoraAdapterFiles();
        await using (var withoutVariable = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--enable-lora"]))
        {
            Assert.Equal(404, (await LoraHttp.PostAsync(withoutVariable.Http, "v1/load_lora_adapter", new { lora_name = "a", lora_path = adapters.Create("a") })).Status);
        }
        await using var withoutLora = await EngineSimProcess.StartAsync(["--latency-preset", "instant"], RuntimeLora);
        var (status, body) = await LoraHttp.PostAsync(withoutLora.Http, "v1/load_lora_adapter", new { lora_name = "a", lora_path = adapters.Create("a") });
        Assert.Equal(400, status);
        Assert.Equal("Call to add_lora method failed: LoRA is not enabled.", body!["error"]!["message"]!.GetValue<string>());
        Assert.Equal("BadRequestError", body["error"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_static_adapter_that_does_not_load_stops_the_server_before_it_listens()
    {
        var (exitCode, output) = await EngineSimProcess.RunToExitAsync(
            ["some-model", "--port", "0", "--enable-lora", "--lora-modules", "missing=/does/not/exist"], TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, exitCode);
        Assert.Contains("No adapter found for /does/not/exist", output);
        Assert.DoesNotContain("listening on", output);
    }

    [Fact]
    public async Task Newer_vllms_load_inplace_reloads_an_adapter_where_it_was_listed()
    {
        using var adapters = new LoraAdapterFiles();
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--enable-lora", "--lora-load-inplace"], RuntimeLora);
        var (first, second) = (adapters.Create("v1"), adapters.Create("v2"));
        Assert.Equal(200, (await LoraHttp.PostAsync(sim.Http, "v1/load_lora_adapter", new { lora_name = "policy", lora_path = first })).Status);
        Assert.Equal(200, (await LoraHttp.PostAsync(sim.Http, "v1/load_lora_adapter", new { lora_name = "other", lora_path = first })).Status);

        var (again, againBody) = await LoraHttp.PostAsync(sim.Http, "v1/load_lora_adapter", new { lora_name = "policy", lora_path = second });
        Assert.Equal(400, again);
        Assert.EndsWith("If you want to load the adapter in place, set 'load_inplace' to True.", againBody!["error"]!["message"]!.GetValue<string>());

        Assert.Equal(200, (await LoraHttp.PostAsync(sim.Http, "v1/load_lora_adapter", new { lora_name = "policy", lora_path = second, load_inplace = true })).Status);
        var adaptersListed = JsonNode.Parse(await sim.Http.GetStringAsync("v1/models"))!["data"]!.AsArray().Skip(1).ToList();
        Assert.Equal(["policy", "other"], adaptersListed.Select(m => m!["id"]!.GetValue<string>()));
        Assert.Equal(second, adaptersListed[0]!["root"]!.GetValue<string>());

        var (missing, missingBody) = await LoraHttp.PostAsync(sim.Http, "v1/load_lora_adapter", new { lora_name = "policy", lora_path = "/gone", load_inplace = true });
        Assert.Equal(404, missing);
        Assert.Equal("Loading lora policy failed: No adapter found for /gone", missingBody!["error"]!["message"]!.GetValue<string>());
        var (wide, wideBody) = await LoraHttp.PostAsync(sim.Http, "v1/load_lora_adapter", new { lora_name = "wide", lora_path = adapters.Create("wide", rank: 32) });
        Assert.Equal(500, wide);
        Assert.Equal("InternalServerError", wideBody!["error"]!["type"]!.GetValue<string>());
    }
}

/// <summary>The LoRA routes answer success in plain text (vLLM's bare <c>Response(content=…)</c>) and errors in JSON.</summary>
internal static class LoraHttp
{
    public static async Task<(int Status, JsonNode? Body)> PostAsync(HttpClient http, string path, object body)
    {
        using var response = await http.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        if (response.IsSuccessStatusCode)
        {
            Assert.StartsWith("Success: LoRA adapter", text);
            Assert.Null(response.Content.Headers.ContentType);
            return ((int)response.StatusCode, null);
        }
        return ((int)response.StatusCode, JsonNode.Parse(text));
    }
}
