using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using OpenAI;
using OpenAI.Chat;
using VllmStack.Hosting.Autoscaler;
using VllmStack.Hosting.Vllm;
using VllmStack.Tests.Infrastructure;
using Xunit.Abstractions;

namespace VllmStack.Tests.Hosting;

/// <summary>The AppHost's stack under Aspire: what users and the router see of it, and what its engine group does.</summary>
[Collection(StackCollection.Name)]
public sealed class StackTests(StackFixture stack, ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    private DistributedApplication App => stack.App;

    [Fact]
    public async Task The_router_streams_a_chat_with_the_openai_sdk_and_sees_each_engine_replica()
    {
        using var cts = new CancellationTokenSource(Bound);
        using var http = App.CreateHttpClientWithoutRetries("router");
        var client = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(http.BaseAddress!, "v1") });
        var text = "";
        await foreach (var update in client.GetChatClient(AspireApps.DefaultModel).CompleteChatStreamingAsync(
            [new UserChatMessage("Hello, stack")], new ChatCompletionOptions { MaxOutputTokenCount = 8 }, cts.Token))
        {
            text += string.Concat(update.ContentUpdate.Select(p => p.Text));
        }
        Assert.False(string.IsNullOrWhiteSpace(text));

        // Each replica is its own endpoint in the router, not one proxy in front of both.
        var engines = await AspireApps.WaitForRoutableEnginesAsync(http, 2, cts.Token);
        var replicaUrls = new[] { "engine-0", "engine-1" }.Select(r => App.GetEndpoint(r, "http").ToString().TrimEnd('/') + "/").ToList();
        Assert.Equal(replicaUrls.Order(), engines.Select(e => e!["url"]!.GetValue<string>()).Order());

        // The group is shown as simulated, running; both replicas report their KV blocks to the cache server.
        var group = App.Snapshot("engine");
        Assert.Equal(KnownResourceStates.Running, group.State?.Text);
        Assert.Equal("true", group.Properties.Single(p => p.Name == "vllm.simulated").Value?.ToString());
        using var cacheServer = App.CreateHttpClient("cacheserver");
        while (JsonNode.Parse(await cacheServer.GetStringAsync("v1/kv/engines", cts.Token))!.AsArray().Count < 2)
        {
            await Task.Delay(100, cts.Token);
        }
    }

    [Fact]
    public async Task A_killed_engine_replica_is_started_again_and_rejoins_the_router_at_the_same_url()
    {
        using var cts = new CancellationTokenSource(Bound);
        var url = App.GetEndpoint("engine-0", "http");
        var before = App.ProgramProcessId("engine-0") ?? throw new InvalidOperationException("engine-0 is not running.");
        using (var victim = System.Diagnostics.Process.GetProcessById(before))
        {
            victim.Kill();
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await App.ResourceNotifications.WaitForResourceAsync("engine-0",
            e => e.Snapshot.ExitCode is not null && e.Snapshot.State?.Text != KnownResourceStates.Running, cts.Token);
        await App.ResourceNotifications.WaitForResourceAsync("engine-0",
            e => e.Snapshot.State?.Text == KnownResourceStates.Running && e.Snapshot.HealthStatus == HealthStatus.Healthy, cts.Token);
        using var router = App.CreateHttpClientWithoutRetries("router");
        var engines = await AspireApps.WaitForRoutableEnginesAsync(router, 2, cts.Token);
        output.WriteLine($"engine-0 was back in the router {clock.Elapsed.TotalSeconds:F1} s after the kill");

        Assert.NotEqual(before, App.ProgramProcessId("engine-0"));
        Assert.Equal(url, App.GetEndpoint("engine-0", "http"));
        Assert.Contains(engines, e => e!["url"]!.GetValue<string>() == url.ToString().TrimEnd('/') + "/");
        Assert.True(await App.WaitForLogAsync("engine", "Replica engine-0 ended", TimeSpan.FromSeconds(10), cts.Token), "the engine group logs the crash");
    }

    [Fact]
    public async Task Scaling_two_to_three_to_one_through_the_group_commands_fails_no_request()
    {
        using var cts = new CancellationTokenSource(Bound);
        using var router = App.CreateHttpClientWithoutRetries("router");
        var group = App.EngineGroup("engine");
        Assert.Equal(2, group.DesiredReplicas);

        var outcomes = new List<string>();
        using var stopLoad = new CancellationTokenSource();
        var load = Task.WhenAll(Enumerable.Range(0, 2).Select(client => Task.Run(async () =>
        {
            while (!stopLoad.IsCancellationRequested && !cts.IsCancellationRequested)
            {
                var outcome = await OpenAiHttp.TryChatAsync(router, AspireApps.DefaultModel, $"client {client}", cts.Token);
                lock (outcomes)
                {
                    outcomes.Add(outcome);
                }
            }
        })));
        try
        {
            await App.ExecuteCommandAsync("engine", "scale-up", cts.Token);
            var three = await AspireApps.WaitForRoutableEnginesAsync(router, 3, cts.Token);
            Assert.Contains(three, e => e!["url"]!.GetValue<string>() == App.GetEndpoint("engine-2", "http").ToString().TrimEnd('/') + "/");

            await App.ExecuteCommandAsync("engine", "scale-down", cts.Token);
            await App.ExecuteCommandAsync("engine", "scale-down", cts.Token);
            Assert.Equal(1, group.DesiredReplicas);
            await AspireApps.WaitForRoutableEnginesAsync(router, 1, cts.Token);
            await App.ResourceNotifications.WaitForResourceAsync("engine-2", KnownResourceStates.Finished, cts.Token);
            await App.ResourceNotifications.WaitForResourceAsync("engine-1", KnownResourceStates.Finished, cts.Token);
            // A few requests on the one replica left.
            var served = Count(outcomes);
            while (Count(outcomes) < served + 4)
            {
                await Task.Delay(50, cts.Token);
            }
        }
        finally
        {
            await stopLoad.CancelAsync();
            await load;
            // Back to two for the other tests.
            await App.EngineGroup("engine").ScaleAsync(2, CancellationToken.None);
            await AspireApps.WaitForRoutableEnginesAsync(router, 2, cts.Token);
        }
        var failures = outcomes.Where(o => o != "ok").ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} of {outcomes.Count} requests failed: {string.Join("; ", failures.Distinct().Take(5))}");
        Assert.True(outcomes.Count >= 10, $"only {outcomes.Count} requests ran while scaling");
        output.WriteLine($"{outcomes.Count} requests while scaling 2 → 3 → 1 → 2, none failed");
    }

    [Fact]
    public async Task Sleep_and_wake_up_reach_every_running_replica()
    {
        using var cts = new CancellationTokenSource(Bound);
        var replicas = new[] { "engine-0", "engine-1" }.Select(r => new HttpClient { BaseAddress = App.GetEndpoint(r, "http") }).ToList();
        try
        {
            await App.ExecuteCommandAsync("engine", "sleep", cts.Token);
            foreach (var replica in replicas)
            {
                Assert.True(JsonNode.Parse(await replica.GetStringAsync("is_sleeping", cts.Token))!["is_sleeping"]!.GetValue<bool>());
            }
        }
        finally
        {
            await App.ExecuteCommandAsync("engine", "wake-up", cts.Token);
        }
        foreach (var replica in replicas)
        {
            Assert.False(JsonNode.Parse(await replica.GetStringAsync("is_sleeping", cts.Token))!["is_sleeping"]!.GetValue<bool>());
            replica.Dispose();
        }
    }

    [Fact]
    public async Task The_scaling_api_answers_bad_requests_with_clear_errors()
    {
        using var cts = new CancellationTokenSource(Bound);
        using var api = new HttpClient { BaseAddress = App.Services.GetRequiredService<ScalingApi>().Url };

        var group = JsonNode.Parse(await api.GetStringAsync("api/resources/engine", cts.Token))!;
        Assert.Equal(2, group["desiredReplicas"]!.GetValue<int>());
        Assert.Equal(4, group["maxReplicas"]!.GetValue<int>());

        using var unknown = await api.PutAsJsonAsync("api/resources/nobody/replicas", new { replicas = 1 }, cts.Token);
        await AssertErrorAsync(unknown, HttpStatusCode.NotFound, "NotFoundError", "No engine group 'nobody'");
        using var tooMany = await api.PutAsJsonAsync("api/resources/engine/replicas", new { replicas = 9 }, cts.Token);
        await AssertErrorAsync(tooMany, HttpStatusCode.BadRequest, "BadRequestError", "runs 0 to 4 replicas, not 9");
        using var garbage = await api.PutAsync("api/resources/engine/replicas", new StringContent("{nope", System.Text.Encoding.UTF8, "application/json"), cts.Token);
        await AssertErrorAsync(garbage, HttpStatusCode.BadRequest, "BadRequestError", "The body must be {\"replicas\": n}");
        Assert.Equal(2, App.EngineGroup("engine").DesiredReplicas);
    }

    [Fact]
    public async Task The_scaling_api_answers_at_once_and_a_replica_wanted_again_while_it_drains_keeps_running()
    {
        using var cts = new CancellationTokenSource(Bound);
        using var api = new HttpClient { BaseAddress = App.Services.GetRequiredService<ScalingApi>().Url };
        using var router = App.CreateHttpClientWithoutRetries("router");
        var pid = App.ProgramProcessId("engine-1") ?? throw new InvalidOperationException("engine-1 is not running.");

        // The answer comes with the count set, not after the drain and stop (an autoscaler's call would time out).
        using (var down = await api.PutAsJsonAsync("api/resources/engine/replicas", new { replicas = 1 }, cts.Token))
        {
            Assert.Equal(HttpStatusCode.OK, down.StatusCode);
            Assert.Equal(1, JsonNode.Parse(await down.Content.ReadAsStringAsync(cts.Token))!["desiredReplicas"]!.GetValue<int>());
        }
        Assert.Equal(KnownResourceStates.Running, App.Snapshot("engine-1").State?.Text);

        // Wanted again before its drain ends: the same process serves again, not a new one.
        using (var up = await api.PutAsJsonAsync("api/resources/engine/replicas", new { replicas = 2 }, cts.Token))
        {
            Assert.Equal(HttpStatusCode.OK, up.StatusCode);
        }
        await AspireApps.WaitForRoutableEnginesAsync(router, 2, cts.Token);
        await Task.Delay(EngineGroupController.DrainTime + TimeSpan.FromSeconds(2), cts.Token);
        Assert.Equal(KnownResourceStates.Running, App.Snapshot("engine-1").State?.Text);
        Assert.Equal(pid, App.ProgramProcessId("engine-1"));
        Assert.Equal(2, App.EngineGroup("engine").DesiredReplicas);
        await AspireApps.WaitForRoutableEnginesAsync(router, 2, cts.Token);
    }

    private static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string type, string message)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"{(int)response.StatusCode}: {body}");
        var error = JsonNode.Parse(body)!["error"]!;
        Assert.Contains(message, error["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(type, error["type"]!.GetValue<string>());
        Assert.Equal((int)status, error["code"]!.GetValue<int>());
    }

    private static int Count(List<string> outcomes)
    {
        lock (outcomes)
        {
            return outcomes.Count;
        }
    }
}
