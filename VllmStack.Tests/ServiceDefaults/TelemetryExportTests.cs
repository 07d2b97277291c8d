using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.ServiceDefaults;

/// <summary>A real service (EngineSim) exporting to a loopback OTLP/HTTP receiver, as it would to the dashboard.</summary>
public sealed class TelemetryExportTests
{
    private sealed record Export(string Path, string ContentType, byte[] Body);

    [Fact]
    public async Task Logs_metrics_and_traces_arrive_over_otlp_http_protobuf_with_the_service_name()
    {
        var received = new ConcurrentQueue<Export>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var receiver = builder.Build();
        receiver.MapPost("/v1/{signal}", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            received.Enqueue(new Export(context.Request.Path, context.Request.ContentType ?? "", body.ToArray()));
            return Results.Ok();
        });
        await receiver.StartAsync();
        var endpoint = receiver.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant"], new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint,
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

        var deadline = Stopwatch.StartNew();
        bool Has(string path, string text) => received.Any(e => e.Path == path && Contains(e.Body, text));
        while (deadline.Elapsed < TimeSpan.FromSeconds(20)
            && !(Has("/v1/traces", "POST /v1/completions") && Has("/v1/metrics", "vllm.generation_tokens") && Has("/v1/logs", "EngineSim ready")))
        {
            await Task.Delay(100);
        }

        Assert.True(Has("/v1/traces", "POST /v1/completions"), "a span named after the route");
        Assert.True(Has("/v1/traces", "http.response.status_code"), "HTTP attributes on the span");
        Assert.True(Has("/v1/metrics", "vllm.generation_tokens"), "the engine's metrics");
        Assert.True(Has("/v1/logs", "EngineSim ready"), "the start-up log line");
        Assert.All(received, e =>
        {
            Assert.Equal("application/x-protobuf", e.ContentType);
            Assert.True(Contains(e.Body, "engine-under-test"), $"{e.Path} carries service.name");
        });
        Assert.DoesNotContain(received, e => e.Path == "/v1/traces" && Contains(e.Body, "/health"));
    }

    private static bool Contains(byte[] haystack, string needle) => haystack.AsSpan().IndexOf(Encoding.UTF8.GetBytes(needle)) >= 0;
}
