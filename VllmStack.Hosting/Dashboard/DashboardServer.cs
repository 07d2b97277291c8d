using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using VllmStack.Hosting.Orchestration;

namespace VllmStack.Hosting.Dashboard;

/// <summary>
/// The dashboard (static pages) and the control API the pages, the autoscaler and tests use:
/// <list type="bullet">
/// <item><c>GET /api/resources</c>, <c>GET /api/resources/{name}</c>: snapshots.</item>
/// <item><c>PUT /api/resources/{name}/replicas</c> <c>{"replicas": n}</c>: scale.</item>
/// <item><c>POST /api/resources/{name}/start|stop|restart</c>.</item>
/// <item><c>GET /api/resources/{name}/logs?after=seq</c>: console lines after a sequence number.</item>
/// </list>
/// Listens on loopback only: it can start and stop processes.
/// </summary>
internal sealed class DashboardServer(DistributedApplication app) : IAsyncDisposable
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
    };

    private WebApplication? _web;

    public Uri Url { get; private set; } = new("http://localhost:18888");

    public async Task StartAsync(Uri requested, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = "VllmStack.Hosting.Dashboard" });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            if (requested.Port == 0 || requested.Host is "127.0.0.1" or "localhost")
            {
                k.Listen(System.Net.IPAddress.Loopback, requested.Port);
            }
            else
            {
                throw new InvalidOperationException($"The dashboard listens on loopback only, not {requested.Host}.");
            }
        });
        var web = builder.Build();
        Map(web);
        await web.StartAsync(cancellationToken).ConfigureAwait(false);
        var bound = new Uri(web.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
        Url = new Uri($"http://localhost:{bound.Port}");
        _web = web;
    }

    private void Map(WebApplication web)
    {
        web.MapGet("/api/resources", () => Results.Json(app.Runtime.Snapshots, Json));
        web.MapGet("/api/resources/{name}", (string name) =>
            app.Runtime.Get(name) is { } snapshot ? Results.Json(snapshot, Json) : NotFound(name));
        web.MapPut("/api/resources/{name}/replicas", async (string name, HttpContext context) =>
        {
            if (!app.IsRunnable(name))
            {
                return NotFound(name);
            }
            ReplicasRequest? request;
            try
            {
                request = await JsonSerializer.DeserializeAsync<ReplicasRequest>(context.Request.Body, Json, context.RequestAborted);
            }
            catch (JsonException e)
            {
                return Error(400, $"Body must be {{\"replicas\": n}}: {e.Message}");
            }
            if (request is null || request.Replicas is < 0 or > 64)
            {
                return Error(400, "'replicas' must be between 0 and 64.");
            }
            _ = app.ScaleAsync(name, request.Replicas);
            return Results.Accepted($"/api/resources/{name}", new { name, replicas = request.Replicas });
        });
        web.MapPost("/api/resources/{name}/{action}", (string name, string action) =>
        {
            if (!app.IsRunnable(name))
            {
                return NotFound(name);
            }
            Func<string, Task>? run = action switch
            {
                "start" => app.StartResourceAsync,
                "stop" => app.StopResourceAsync,
                "restart" => app.RestartAsync,
                _ => null,
            };
            if (run is null)
            {
                return Error(400, $"Unknown action '{action}': use start, stop or restart.");
            }
            // The action runs on; the answer says it was accepted, the snapshot shows its progress.
            _ = run(name);
            return Results.Accepted($"/api/resources/{name}", new { name, action });
        });
        web.MapGet("/api/resources/{name}/logs", (string name, long? after) =>
            app.Runtime.Get(name) is null ? NotFound(name) : Results.Json(new { lines = app.Logs.Read(name, after ?? 0) }, Json));
        web.MapGet("/{**path}", (string? path) => StaticFile(string.IsNullOrEmpty(path) ? "index.html" : path));
    }

    private static IResult NotFound(string name) => Error(404, $"No resource named '{name}'.");

    private static IResult Error(int status, string message) =>
        Results.Json(new { error = new { message, type = status == 404 ? "NotFoundError" : "BadRequestError", param = (string?)null, code = status } }, Json, statusCode: status);

    private static IResult StaticFile(string path)
    {
        var name = "VllmStack.Hosting.Dashboard.wwwroot." + path.Replace('/', '.');
        var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(name);
        if (stream is null)
        {
            return Error(404, $"No page '{path}'.");
        }
        var type = Path.GetExtension(path) switch
        {
            ".html" => "text/html; charset=utf-8",
            ".js" => "text/javascript; charset=utf-8",
            ".css" => "text/css; charset=utf-8",
            ".svg" => "image/svg+xml",
            _ => "application/octet-stream",
        };
        return Results.Stream(stream, type);
    }

    private sealed record ReplicasRequest(int Replicas);

    public async ValueTask DisposeAsync()
    {
        if (_web is not null)
        {
            await _web.StopAsync().ConfigureAwait(false);
            await _web.DisposeAsync().ConfigureAwait(false);
        }
    }
}
