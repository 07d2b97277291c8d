using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenAI;
using OpenAI.Chat;
using VllmStack.Tests.Infrastructure;
using Xunit.Abstractions;

namespace VllmStack.Tests.Hosting;

/// <summary>
/// The AppHost with two models × two engines and six declared LoRA adapters over <c>--max-loras 2</c>: the router's LoRA
/// manager loads adapters on demand, its admin API adds one at run time, and an engine that restarts gets its adapters back.
/// </summary>
public sealed class LoraStackTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(300);
    private const string Alpha = "acme/Alpha-1B";
    private const string Beta = "acme/Beta-1B";

    [Fact]
    public async Task Every_model_and_adapter_is_served_a_runtime_adapter_becomes_routable_and_a_restarted_engine_gets_its_adapters_back()
    {
        using var cts = new CancellationTokenSource(Bound);
        using var files = new LoraAdapterFiles();
        string[] alphaAdapters = ["alpha-sql", "alpha-chat", "alpha-json"];
        string[] betaAdapters = ["beta-sql", "beta-chat", "beta-json"];
        var args = new List<string>
        {
            "--Parameters:autoscaler=false", "--Parameters:router-port=0",
            $"--Models:0:Name={Alpha}", "--Models:0:Group=engine-alpha", "--Models:0:Replicas=2", "--Models:0:MaxLoras=2",
            $"--Models:1:Name={Beta}", "--Models:1:Group=engine-beta", "--Models:1:Replicas=2", "--Models:1:MaxLoras=2",
        };
        foreach (var (adapters, model) in new[] { (alphaAdapters, 0), (betaAdapters, 1) })
        {
            for (var i = 0; i < adapters.Length; i++)
            {
                args.Add($"--Models:{model}:Adapters:{i}:Name={adapters[i]}");
                args.Add($"--Models:{model}:Adapters:{i}:Source={files.Create(adapters[i])}");
            }
        }
        await using var app = await AspireApps.StartAppHostAsync(args, dashboard: false, engines: 4, cts.Token);
        using var router = app.CreateHttpClientWithoutRetries("router");
        string[] engineNames = ["engine-alpha-0", "engine-alpha-1", "engine-beta-0", "engine-beta-1"];
        var engines = engineNames.ToDictionary(n => n, n => new HttpClient { BaseAddress = app.GetEndpoint(n, "http") });
        try
        {
            // The SDK's own retries would hide a 5xx: every request is sent once.
            var client = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions
            {
                Endpoint = new Uri(router.BaseAddress!, "v1"),
                RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
                NetworkTimeout = TimeSpan.FromSeconds(120),
            });
            async Task ChatAsync(string model, int round)
            {
                var completion = await client.GetChatClient(model).CompleteChatAsync([new UserChatMessage($"Hello {model} {round}")],
                    new ChatCompletionOptions { MaxOutputTokenCount = 4 }, cts.Token);
                Assert.Equal(model, completion.Value.Model);
            }

            // Every model and adapter: no 404 and no 5xx (the SDK throws on either), in rounds of all of them at once — the
            // first while every adapter is cold, so that the manager places three adapters per model over two engines of two
            // slots while their requests wait.
            string[] all = [Alpha, Beta, .. alphaAdapters, .. betaAdapters];
            for (var round = 0; round < 4; round++)
            {
                await Task.WhenAll(all.Select(m => ChatAsync(m, round)));
            }

            // Each engine holds at most its two slots' worth, only its own model's adapters, and every adapter is held somewhere.
            var held = new List<string>();
            foreach (var (name, engine) in engines)
            {
                var loaded = await LoadedAdaptersAsync(engine, cts.Token);
                output.WriteLine($"{name}: {string.Join(", ", loaded.Select(l => l.Name))}");
                Assert.True(loaded.Count <= 2, $"{name} holds {loaded.Count} adapters");
                Assert.All(loaded, l => Assert.Equal(name.StartsWith("engine-alpha", StringComparison.Ordinal) ? Alpha : Beta, l.Parent));
                held.AddRange(loaded.Select(l => l.Name));
            }
            Assert.Equal(alphaAdapters.Concat(betaAdapters).Order(), held.Distinct().Order());

            // An adapter added through the admin API is routable without a restart.
            var added = files.Create("alpha-runtime");
            using (var response = await router.PostAsync("admin/lora_adapters", JsonContent(new JsonObject
            {
                ["name"] = "alpha-runtime", ["base_model"] = Alpha, ["source"] = added,
            }), cts.Token))
            {
                Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            }
            await ChatAsync("alpha-runtime", 0);
            var listed = JsonNode.Parse(await router.GetStringAsync("admin/lora_adapters", cts.Token))!["data"]!.AsArray();
            Assert.Equal("runtime", (string?)listed.Single(a => (string)a!["name"]! == "alpha-runtime")!["origin"]);
            Assert.Equal("declared", (string?)listed.Single(a => (string)a!["name"]! == "alpha-sql")!["origin"]);

            // An engine that restarts (SIGKILL; the engine group starts it again on its URL) gets its adapters back.
            var victim = "engine-beta-0";
            var kept = (await LoadedAdaptersAsync(engines[victim], cts.Token)).Select(l => l.Name).ToList();
            if (kept.Count == 0)
            {
                await ChatAsync("beta-json", 9);
                kept = [.. (await LoadedAdaptersAsync(engines[victim], cts.Token)).Select(l => l.Name)];
            }
            Assert.NotEmpty(kept);
            // At once: placements too young for the router to judge (one model refresh and a control call) are restored once
            // they are old enough.
            var pid = app.ProgramProcessId(victim) ?? throw new InvalidOperationException($"{victim} is not running.");
            using (var process = System.Diagnostics.Process.GetProcessById(pid))
            {
                process.Kill();
            }
            await app.ResourceNotifications.WaitForResourceAsync(victim,
                e => e.Snapshot.ExitCode is not null && e.Snapshot.State?.Text != KnownResourceStates.Running, cts.Token);
            await app.ResourceNotifications.WaitForResourceAsync(victim,
                e => e.Snapshot.State?.Text == KnownResourceStates.Running && e.Snapshot.HealthStatus == HealthStatus.Healthy, cts.Token);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            List<string> back = [];
            while (!kept.All(back.Contains))
            {
                await Task.Delay(250, cts.Token);
                back = [.. (await LoadedAdaptersAsync(engines[victim], cts.Token)).Select(l => l.Name)];
            }
            output.WriteLine($"{victim} had {string.Join(", ", kept)} again {clock.Elapsed.TotalSeconds:F1} s after it was healthy");
            foreach (var model in all)
            {
                await ChatAsync(model, 10);
            }
        }
        catch
        {
            // What the router and the engines said is the first thing to read when this fails.
            using var logs = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            foreach (var resource in engineNames.Prepend("router"))
            {
                foreach (var line in (await app.LogsAsync(resource, logs.Token)).TakeLast(60))
                {
                    output.WriteLine($"{resource}: {line}");
                }
            }
            throw;
        }
        finally
        {
            foreach (var engine in engines.Values)
            {
                engine.Dispose();
            }
        }
    }

    /// <summary>The adapters an engine's own <c>/v1/models</c> lists (vLLM lists loaded adapters, with their base model as <c>parent</c>).</summary>
    private static async Task<List<(string Name, string? Parent)>> LoadedAdaptersAsync(HttpClient engine, CancellationToken cancellationToken)
    {
        var models = JsonNode.Parse(await engine.GetStringAsync("v1/models", cancellationToken))!["data"]!.AsArray();
        return [.. models.Where(m => m!["parent"] is not null).Select(m => ((string)m!["id"]!, (string?)m["parent"]))];
    }

    private static StringContent JsonContent(JsonNode body) => new(body.ToJsonString(), System.Text.Encoding.UTF8, "application/json");
}
