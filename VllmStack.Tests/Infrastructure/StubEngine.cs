using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace VllmStack.Tests.Infrastructure;

/// <summary>One request as the stub engine received it.</summary>
public sealed record ReceivedRequest(string Method, string Path, string? Authorization, string? ContentType, long Length, string Sha256, IReadOnlyDictionary<string, string> Headers);

/// <summary>
/// A minimal engine on a loopback port, for what EngineSim cannot say: it serves vLLM's discovery routes
/// (<c>/v1/models</c>, <c>/health</c>, <c>/metrics</c>) and answers every POST with what it received (path, length,
/// SHA-256 of the body), keeping each request for the test to inspect. Real HTTP over Kestrel, in the test process.
/// </summary>
public sealed class StubEngine : IAsyncDisposable
{
    private readonly WebApplication _app;

    private StubEngine(WebApplication app, Uri baseUrl)
    {
        _app = app;
        BaseUrl = baseUrl;
    }

    public Uri BaseUrl { get; }

    public ConcurrentQueue<ReceivedRequest> Received { get; } = new();

    /// <param name="maxRequestBodySize">Kestrel's body limit: past it the stub answers 413 at once and closes, as a strict server does.</param>
    public static async Task<StubEngine> StartAsync(string model, long? maxRequestBodySize = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0);
            k.Limits.MaxRequestBodySize = maxRequestBodySize;
            k.ResponseHeaderEncodingSelector = _ => Encoding.UTF8;
        });
        var app = builder.Build();
        StubEngine? stub = null;
        app.MapGet("/health", () => Results.Ok());
        app.MapGet("/metrics", () => Results.Text("", "text/plain; version=0.0.4"));
        app.MapGet("/v1/models", () => Results.Text(
            $$"""{"object":"list","data":[{"id":"{{model}}","object":"model","created":0,"owned_by":"vllm","root":"{{model}}","parent":null}]}""",
            "application/json"));
        app.MapPost("/{**path}", async (HttpContext context) =>
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[64 * 1024];
            long length = 0;
            int read;
            while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                sha.AppendData(buffer, 0, read);
                length += read;
            }
            var hash = Convert.ToHexStringLower(sha.GetHashAndReset());
            var request = new ReceivedRequest(context.Request.Method, context.Request.Path.Value!, context.Request.Headers.Authorization.FirstOrDefault(),
                context.Request.ContentType, length, hash, context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()));
            stub!.Received.Enqueue(request);
            context.Response.Headers["x-stub-region"] = "São Paulo";
            return Results.Json(new { path = request.Path, bytes = length, sha256 = hash });
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        stub = new StubEngine(app, new Uri(address.TrimEnd('/') + "/"));
        return stub;
    }

    public static string Sha256(ReadOnlySpan<byte> body) => Convert.ToHexStringLower(SHA256.HashData(body));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
