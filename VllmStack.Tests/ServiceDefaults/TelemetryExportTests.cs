using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using VllmStack.ServiceDefaults;
using VllmStack.ServiceDefaults.Telemetry;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.ServiceDefaults;

/// <summary>Services exporting to a loopback OTLP/HTTP receiver, as they would to the dashboard.</summary>
public sealed class TelemetryExportTests
{
    [Fact]
    public async Task Logs_metrics_and_traces_arrive_over_otlp_http_protobuf_with_the_service_name()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant"], new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Endpoint,
            ["OTEL_SERVICE_NAME"] = "engine-under-test",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
            ["OTEL_BLRP_SCHEDULE_DELAY"] = "100",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "300",
        });
        using (var response = await sim.Http.PostAsync("v1/completions",
            new StringContent("""{"prompt":"trace me","max_tokens":3}""", Encoding.UTF8, "application/json")))
        {
            response.EnsureSuccessStatusCode();
        }
        // Probes must not be traced; a completion must be.
        await sim.Http.GetStringAsync("health");

        await receiver.WaitForAsync(() => receiver.Has("/v1/traces", "POST /v1/completions") && receiver.Has("/v1/metrics", "vllm.generation_tokens")
            && receiver.Has("/v1/metrics", "http.server.request.duration") && receiver.Has("/v1/logs", "EngineSim ready"));

        Assert.True(receiver.Has("/v1/traces", "POST /v1/completions"), "a span named after the route");
        foreach (var attribute in new[] { "http.request.method", "http.route", "url.path", "url.scheme", "server.address", "network.protocol.version", "http.response.status_code" })
        {
            Assert.True(receiver.Has("/v1/traces", attribute), $"{attribute} on the span");
        }
        Assert.True(receiver.Has("/v1/metrics", "vllm.generation_tokens"), "the engine's metrics");
        Assert.True(receiver.Has("/v1/metrics", "http.server.request.duration"), "ASP.NET Core's metrics");
        Assert.True(receiver.Has("/v1/logs", "EngineSim ready"), "the start-up log line");
        Assert.All(receiver.Received, e =>
        {
            Assert.Equal("application/x-protobuf", e.ContentType);
            Assert.True(OtlpReceiver.Contains(e.Body, "engine-under-test"), $"{e.Path} carries service.name");
        });
        Assert.False(receiver.Has("/v1/traces", "/health"), "probes are not traced");
    }

    [Fact]
    public async Task Calls_through_an_untraced_client_make_no_span_and_ask_the_server_for_none()
    {
        await using var receiver = await OtlpReceiver.StartAsync();
        // The peer records the traceparent of each call. In this process, so the exporting host's SDK sees its spans too.
        var traceparents = new ConcurrentDictionary<string, string>();
        var peerBuilder = WebApplication.CreateSlimBuilder();
        peerBuilder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var peer = peerBuilder.Build();
        peer.MapGet("/{name}", (string name, HttpContext context) => traceparents[name] = context.Request.Headers["traceparent"].ToString());
        await peer.StartAsync();
        var peerUrl = peer.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Endpoint,
            ["OTEL_SERVICE_NAME"] = "untraced-client-test",
            // Exported while the host runs: what a bounded stop flushes on a loaded machine is not this test's question.
            ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
        });
        builder.AddServiceDefaults();
        builder.Services.AddHttpClient("background").WithoutTracing();
        builder.Services.AddHttpClient("user");
        using var host = builder.Build();
        await host.StartAsync();
        var factory = host.Services.GetRequiredService<IHttpClientFactory>();
        await factory.CreateClient("background").GetStringAsync($"{peerUrl}/background-call");
        await factory.CreateClient("user").GetStringAsync($"{peerUrl}/user-call");
        await receiver.WaitForAsync(() => receiver.Has("/v1/traces", "user-call"));
        var stopping = Stopwatch.StartNew();
        await host.StopAsync();
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(5), $"the stop took {stopping.Elapsed}");

        Assert.EndsWith("-00", traceparents["background-call"]);
        Assert.EndsWith("-01", traceparents["user-call"]);
        Assert.True(receiver.Has("/v1/traces", "user-call"), "the traced call has its spans");
        Assert.False(receiver.Has("/v1/traces", "background-call"), "neither the untraced call nor the server's answer to it has a span");
    }

    [Fact]
    public async Task A_collector_that_has_gone_does_not_hold_up_the_stop()
    {
        // The worst kind of gone: a port that takes connections and never answers (the exporter would wait 10 s).
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = $"http://{silent.LocalEndpoint}",
        });
        builder.AddServiceDefaults();
        builder.Services.AddHttpClient();
        using var host = builder.Build();
        await host.StartAsync();
        using (var activity = new ActivitySource("VllmStack.Tests").StartActivity("work"))
        {
            Assert.NotNull(activity);
        }
        var stopping = Stopwatch.StartNew();
        await host.StopAsync();
        host.Dispose();
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(4), $"the stop took {stopping.Elapsed}");
    }

    /// <summary>A loopback OTLP/HTTP receiver: keeps every export it is sent.</summary>
    private sealed class OtlpReceiver : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private OtlpReceiver()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            _app = builder.Build();
            _app.MapPost("/v1/{signal}", async (HttpContext context) =>
            {
                using var body = new MemoryStream();
                await context.Request.Body.CopyToAsync(body);
                Received.Enqueue(new Export(context.Request.Path, context.Request.ContentType ?? "", body.ToArray()));
                return Results.Ok();
            });
        }

        public sealed record Export(string Path, string ContentType, byte[] Body);

        public ConcurrentQueue<Export> Received { get; } = new();

        public string Endpoint => _app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        public static async Task<OtlpReceiver> StartAsync()
        {
            var receiver = new OtlpReceiver();
            await receiver._app.StartAsync();
            return receiver;
        }

        public bool Has(string path, string text) => Received.Any(e => e.Path == path && Contains(e.Body, text));

        public async Task WaitForAsync(Func<bool> condition)
        {
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < TimeSpan.FromSeconds(20) && !condition())
            {
                await Task.Delay(100);
            }
        }

        public static bool Contains(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) >= 0;

        public ValueTask DisposeAsync() => _app.DisposeAsync();
    }
}
