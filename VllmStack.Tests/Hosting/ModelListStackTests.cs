using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.Testing;
using OpenAI;
using OpenAI.Chat;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Hosting;

/// <summary>The AppHost with two models from configuration: an engine group each, one router for both.</summary>
public sealed class ModelListStackTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(180);

    [Fact]
    public async Task Two_configured_models_each_get_their_own_engines_behind_one_router_that_lists_both_and_the_adapter()
    {
        using var cts = new CancellationTokenSource(Bound);
        using var adapters = new LoraAdapterFiles();
        var sqlAdapter = adapters.Create("alpha-sql");
        await using var app = await AspireApps.StartAppHostAsync(
        [
            "--Parameters:autoscaler=false", "--Parameters:router-port=0",
            "--Models:0:Name=acme/Alpha-1B", "--Models:0:Replicas=1", "--Models:0:MaxLoras=2",
            "--Models:0:Adapters:0:Name=alpha-sql", $"--Models:0:Adapters:0:Source={sqlAdapter}",
            "--Models:1:Name=acme/Beta-1B", "--Models:1:Group=engine-b", "--Models:1:Replicas=1",
        ], dashboard: false, engines: 2, cts.Token);

        // One group per model, named from the model or as configured; the default group is not there.
        using var alphaEngine = new HttpClient { BaseAddress = app.GetEndpoint("engine-alpha-1b-0", "http") };
        using var betaEngine = new HttpClient { BaseAddress = app.GetEndpoint("engine-b-0", "http") };
        Assert.False(app.ResourceNotifications.TryGetCurrentState("engine", out _));

        // The router was started with the catalogue of the declared adapter, written before it started.
        var routerArgs = ProcessTree.CommandLine(app.ProgramProcessId("router") ?? throw new InvalidOperationException("router is not running.")).Split(' ').ToList();
        var catalogue = routerArgs[routerArgs.IndexOf("--lora-adapters-file") + 1];
        Assert.Equal($$"""{"adapters":[{"name":"alpha-sql","base_model":"acme/Alpha-1B","source":{{JsonValue.Create(sqlAdapter).ToJsonString()}}}]}""",
            JsonNode.Parse(await File.ReadAllTextAsync(catalogue, cts.Token))!.ToJsonString());
        // The model with adapters runs engines that load and unload adapters at run time; the other one has no such routes.
        // (vLLM answers these routes in plain text.)
        async Task<HttpStatusCode> PostAsync(HttpClient engine, string path, object body)
        {
            using var response = await engine.PostAsJsonAsync(path, body, cts.Token);
            return response.StatusCode;
        }
        var probe = new { lora_name = "probe", lora_path = adapters.Create("probe") };
        Assert.Equal(HttpStatusCode.OK, await PostAsync(alphaEngine, "v1/load_lora_adapter", probe));
        Assert.Equal(HttpStatusCode.OK, await PostAsync(alphaEngine, "v1/unload_lora_adapter", new { lora_name = "probe" }));
        Assert.Equal(HttpStatusCode.NotFound, await PostAsync(betaEngine, "v1/load_lora_adapter", probe));

        using var router = app.CreateHttpClientWithoutRetries("router");
        var client = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(router.BaseAddress!, "v1") });
        var sent = new Dictionary<string, int> { ["acme/Alpha-1B"] = 3, ["alpha-sql"] = 2, ["acme/Beta-1B"] = 4 };
        foreach (var (model, count) in sent)
        {
            for (var i = 0; i < count; i++)
            {
                var completion = await client.GetChatClient(model).CompleteChatAsync([new UserChatMessage($"Hello {model} {i}")],
                    new ChatCompletionOptions { MaxOutputTokenCount = 4 }, cts.Token);
                Assert.Equal(model, completion.Value.Model);
            }
        }

        // The router lists both models and the adapter, which its LoRA manager loaded for the requests above, with its parent.
        var models = JsonNode.Parse(await router.GetStringAsync("v1/models", cts.Token))!["data"]!.AsArray();
        Assert.Equal(["acme/Alpha-1B", "acme/Beta-1B", "alpha-sql"], models.Select(m => (string)m!["id"]!).Order());
        Assert.Equal("acme/Alpha-1B", (string?)models.Single(m => (string)m!["id"]! == "alpha-sql")!["parent"]);
        Assert.All(models.Where(m => (string)m!["id"]! != "alpha-sql"), m => Assert.Null(m!["parent"]));

        // Each engine served exactly its own model's requests (vLLM counts a request under the base model's name).
        var alpha = PrometheusTextParser.Parse(await alphaEngine.GetStringAsync("metrics", cts.Token));
        var beta = PrometheusTextParser.Parse(await betaEngine.GetStringAsync("metrics", cts.Token));
        Assert.Equal(5, alpha.Sum("vllm:request_success_total"));
        Assert.Equal(4, beta.Sum("vllm:request_success_total"));
        Assert.Equal(0, beta.Sum("vllm:request_success_total", ("model_name", "acme/Alpha-1B")));
    }
}
