using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.Testing;
using VllmStack.Hosting.Autoscaler;
using VllmStack.Hosting.Router;
using VllmStack.Hosting.Vllm;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Autoscaler;

/// <summary>
/// The autoscaler in a real stack started by Aspire's testing builder: EngineSim engines (2 sequences each, so requests
/// queue), the router, the autoscaler with short windows, and the AppHost's scaling API as its actuator.
/// </summary>
[Collection(VllmStack.Tests.CacheServer.TimingSensitive.Name)]
public sealed class AutoscalerStackTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(150);

    /// <summary>Simulated engines of one model, a router over them and the autoscaler (1 s interval) scaling them.</summary>
    private static IDistributedApplicationTestingBuilder Stack(Action<VllmEngineOptions> engineOptions, string[] routerArgs, Action<AutoscalePolicy> policy)
    {
        var builder = DistributedApplicationTestingBuilder.Create($"--{VllmBuilderExtensions.ModeConfigurationKey}=simulated");
        var model = builder.AddParameter("model", "autoscale-model");
        var engine = builder.AddVllm<Projects.VllmStack_EngineSim>("engine", model).WithEngineOptions(engineOptions);
        var router = builder.AddVllmRouter<Projects.VllmStack_Router>("router")
            .WithArgs(["--engine-stats-interval", "0.5", .. routerArgs])
            .WithEngines(engine)
            .WaitFor(engine);
        builder.AddAutoscaler<Projects.VllmStack_Autoscaler>("autoscaler", router)
            .WithEnvironment("Autoscaler__IntervalSeconds", "1")
            .WithScaleTarget(engine, policy);
        return builder;
    }

    /// <summary>Builds and starts the stack, and waits until the autoscaler is healthy (it is the last to start).</summary>
    private static async Task<DistributedApplication> StartedAsync(IDistributedApplicationTestingBuilder builder, CancellationToken cancellationToken)
    {
        var app = await builder.BuildAsync(cancellationToken);
        try
        {
            await app.StartAsync(cancellationToken);
            await app.ResourceNotifications.WaitForResourceHealthyAsync("autoscaler", cancellationToken);
            return app;
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>EngineSim running 2 sequences at a time, 5 ms a token: a few clients make requests queue.</summary>
    private static void TwoSequenceEngines(VllmEngineOptions o)
    {
        o.MaxNumSeqs = 2;
        o.SimulatorPreset = "fast";
        o.ExtraArgs.Add("--inter-token-latency-ms");
        o.ExtraArgs.Add("5");
    }

    /// <summary>Short windows from one replica: 2 waiting per replica, an 8 s stable and 3 s panic window, 2 s to scale up.</summary>
    private static void BurstPolicy(AutoscalePolicy p, int maxReplicas, int scaleDownSeconds)
    {
        p.MinReplicas = 1;
        p.MaxReplicas = maxReplicas;
        p.TargetWaitingPerReplica = 2;
        p.StableWindowSeconds = 8;
        p.PanicWindowSeconds = 3;
        p.ScaleUpStabilizationSeconds = 2;
        p.ScaleDownStabilizationSeconds = scaleDownSeconds;
    }

    [Fact]
    public async Task A_burst_scales_engines_up_and_they_come_back_down_after_the_window_without_a_failed_request()
    {
        using var cts = new CancellationTokenSource(Bound);
        var builder = Stack(
            TwoSequenceEngines,
            ["--routing-logic", "leastload"],
            p => BurstPolicy(p, maxReplicas: 3, scaleDownSeconds: 6));
        using var disposeBuilder = builder;
        await using var app = await StartedAsync(builder, cts.Token);
        using var http = app.CreateHttpClientWithoutRetries("router");
        http.Timeout = TimeSpan.FromSeconds(30);
        Assert.Equal(1, app.EngineGroup("engine").DesiredReplicas);

        var results = new List<string>();
        var maxReplicas = 1;
        async Task LoadAsync(int clients, Func<bool> keepGoing)
        {
            await Task.WhenAll(Enumerable.Range(0, clients).Select(async client =>
            {
                while (keepGoing() && !cts.IsCancellationRequested)
                {
                    var outcome = await OpenAiHttp.TryChatAsync(http, "autoscale-model", $"client {client}: tell me a long story", cts.Token, maxTokens: 150);
                    lock (results)
                    {
                        results.Add(outcome);
                    }
                }
            }));
        }

        // A burst: 10 clients, each streaming 150-token answers (~0.75 s), on one engine that runs 2 at a time.
        var burstEnd = DateTime.UtcNow + TimeSpan.FromSeconds(40);
        // The burst goes on a few seconds after the first scale-up, so the new replicas take part of it.
        var stopBurstAt = burstEnd.Ticks;
        var burst = LoadAsync(10, () => DateTime.UtcNow.Ticks < Interlocked.Read(ref stopBurstAt));
        while (!burst.IsCompleted)
        {
            var replicas = app.EngineGroup("engine").DesiredReplicas;
            if (replicas > maxReplicas)
            {
                if (maxReplicas == 1)
                {
                    Interlocked.Exchange(ref stopBurstAt, (DateTime.UtcNow + TimeSpan.FromSeconds(6)).Ticks);
                }
                maxReplicas = replicas;
            }
            await Task.Delay(200, cts.Token);
        }
        await burst;
        var burstRequests = results.Count;
        Assert.True(maxReplicas >= 2, $"the burst should have added replicas; the autoscaler said: {await DecisionsAsync(app, cts.Token)}");

        // The load is gone but for one light client; after the scale-down window the engines come back to the minimum,
        // and the client's requests keep succeeding while replicas are retired.
        var settled = false;
        var light = LoadAsync(1, () => !Volatile.Read(ref settled));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (app.EngineGroup("engine").DesiredReplicas > 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250, cts.Token);
        }
        // Let the last retired replica finish draining under the light load.
        await Task.Delay(TimeSpan.FromSeconds(4), cts.Token);
        Volatile.Write(ref settled, true);
        await light;

        Assert.Equal(1, app.EngineGroup("engine").DesiredReplicas);
        var failures = results.Where(r => r != "ok").ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} of {results.Count} requests failed: {string.Join("; ", failures.Distinct().Take(5))}");
        Assert.True(burstRequests >= 10, $"only {burstRequests} requests ran in the burst");
        Assert.True(results.Count - burstRequests >= 3, $"only {results.Count - burstRequests} requests ran while the engines scaled down");

        using var autoscaler = app.CreateHttpClientWithoutRetries("autoscaler");
        var metrics = PrometheusTextParser.Parse(await autoscaler.GetStringAsync("metrics", cts.Token));
        Assert.True(metrics.Sum("vllmstack:autoscaler_decisions_total", ("direction", "up")) >= 1);
        Assert.True(metrics.Sum("vllmstack:autoscaler_decisions_total", ("direction", "down")) >= 1);
        Assert.Equal(1, metrics.Sum("vllmstack:autoscaler_desired_replicas", ("target", "engine")));
        Assert.True(await app.WaitForLogAsync("autoscaler", "Scaling engine (autoscale-model) from 1 to", TimeSpan.FromSeconds(10), cts.Token), await DecisionsAsync(app, cts.Token));
    }

    [Fact]
    public async Task Requests_held_in_the_routers_admission_queue_count_as_waiting_and_scale_engines_up()
    {
        using var cts = new CancellationTokenSource(Bound);
        // The router lets each engine hold 2 running + 1 waiting; the rest of the burst waits in its queue. The engines'
        // own waiting count (at most 1) never reaches the target of 2 per replica: only the queued demand can scale them.
        var builder = Stack(
            TwoSequenceEngines,
            ["--routing-logic", "leastload", "--admission-control", "true", "--max-in-flight-per-engine", "3", "--max-queue-wait", "60"],
            p => BurstPolicy(p, maxReplicas: 2, scaleDownSeconds: 60));
        using var disposeBuilder = builder;
        await using var app = await StartedAsync(builder, cts.Token);
        using var http = app.CreateHttpClientWithoutRetries("router");
        http.Timeout = TimeSpan.FromSeconds(90);

        var results = new List<string>();
        var queuedSeen = 0;
        var stop = false;
        var burst = Task.WhenAll(Enumerable.Range(0, 12).Select(async client =>
        {
            while (!Volatile.Read(ref stop) && !cts.IsCancellationRequested)
            {
                var outcome = await OpenAiHttp.TryChatAsync(http, "autoscale-model", $"client {client}: tell me a long story", cts.Token, maxTokens: 150);
                lock (results)
                {
                    results.Add(outcome);
                }
            }
        }));
        // Its own client: the burst's streams must not hold up the look at the queue.
        using var observer = new HttpClient { BaseAddress = app.GetEndpoint("router", "http"), Timeout = TimeSpan.FromSeconds(10) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        // Until both are seen: on a loaded machine the scale-up can come before this client's first look, and 12
        // clients keep the queue of even two engines (3 each) busy.
        while ((app.EngineGroup("engine").DesiredReplicas < 2 || queuedSeen < 5) && DateTime.UtcNow < deadline)
        {
            var queued = JsonNode.Parse(await observer.GetStringAsync("engines", cts.Token))!["queued_requests"]?["autoscale-model"]?.GetValue<int>() ?? 0;
            queuedSeen = Math.Max(queuedSeen, queued);
            await Task.Delay(200, cts.Token);
        }
        Volatile.Write(ref stop, true);
        await burst;

        Assert.True(queuedSeen >= 5, $"the router's queue never held the burst (at most {queuedSeen}); {await http.GetStringAsync("engines", cts.Token)}; {await DecisionsAsync(app, cts.Token)}");
        Assert.True(app.EngineGroup("engine").DesiredReplicas >= 2, $"queued demand did not scale the engines up; the autoscaler said: {await DecisionsAsync(app, cts.Token)}");
        var failures = results.Where(r => r != "ok").ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} of {results.Count} requests failed: {string.Join("; ", failures.Distinct().Take(5))}");
    }

    [Fact]
    public async Task An_idle_model_scales_to_zero_and_its_first_request_brings_a_replica_back()
    {
        using var cts = new CancellationTokenSource(Bound);
        var builder = Stack(
            o => o.SimulatorPreset = "instant",
            ["--scale-to-zero-models", "autoscale-model"],
            p =>
            {
                p.MaxReplicas = 2;
                p.StableWindowSeconds = 3;
                p.PanicWindowSeconds = 2;
                p.ScaleDownStabilizationSeconds = 2;
                p.ScaleToZero = true;
                p.ScaleToZeroAfterSeconds = 4;
            });
        using var disposeBuilder = builder;
        await using var app = await StartedAsync(builder, cts.Token);
        using var http = app.CreateHttpClientWithoutRetries("router");

        while (app.EngineGroup("engine").DesiredReplicas > 0)
        {
            await Task.Delay(250, cts.Token);
        }
        // Gone from the router too (the retired replica drains first).
        while (JsonNode.Parse(await http.GetStringAsync("engines", cts.Token))!["engines"]!.AsArray().Count > 0)
        {
            await Task.Delay(250, cts.Token);
        }

        // The first request finds no engine: 503 with Retry-After, not 404; retried as a client would, it is served.
        var body = new { model = "autoscale-model", messages = new[] { new { role = "user", content = "wake up" } }, max_tokens = 4 };
        using (var first = await http.PostAsJsonAsync("v1/chat/completions", body, cts.Token))
        {
            Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, first.StatusCode);
            Assert.NotNull(first.Headers.RetryAfter?.Delta);
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        System.Net.HttpStatusCode status;
        do
        {
            await Task.Delay(500, cts.Token);
            using var retry = await http.PostAsJsonAsync("v1/chat/completions", body, cts.Token);
            status = retry.StatusCode;
        }
        while (status != System.Net.HttpStatusCode.OK && clock.Elapsed < TimeSpan.FromSeconds(40));
        Assert.Equal(System.Net.HttpStatusCode.OK, status);
        Assert.Equal(1, app.EngineGroup("engine").DesiredReplicas);
        foreach (var decision in new[] { "scaling to zero", "arrived while scaled to zero" })
        {
            Assert.True(await app.WaitForLogAsync("autoscaler", decision, TimeSpan.FromSeconds(10), cts.Token), await DecisionsAsync(app, cts.Token));
        }
    }

    private static async Task<string> DecisionsAsync(DistributedApplication app, CancellationToken cancellationToken)
    {
        using var autoscaler = app.CreateHttpClientWithoutRetries("autoscaler");
        var decisions = await autoscaler.GetStringAsync("decisions", cancellationToken);
        return decisions + " | " + string.Join(" / ", (await app.LogsAsync("autoscaler", cancellationToken)).TakeLast(8));
    }
}
