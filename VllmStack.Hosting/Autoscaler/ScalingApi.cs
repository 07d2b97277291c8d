using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using VllmStack.Hosting.Vllm;

namespace VllmStack.Hosting.Autoscaler;

/// <summary>
/// The one thing a local autoscaler needs from the AppHost: an engine group's wanted replica count, read and set —
/// <c>GET /api/resources/{name}</c> (<c>{"name", "desiredReplicas", "maxReplicas"}</c>) and
/// <c>PUT /api/resources/{name}/replicas {"replicas": n}</c>, answered as soon as the count is set (errors in OpenAI's
/// shape) — on a loopback port inside the AppHost process, which scales through the group's own controller (Aspire's start and stop commands, the graceful retire). On Kubernetes the
/// autoscaler patches the Deployment's scale subresource instead.
/// </summary>
public sealed class ScalingApi : IAsyncDisposable
{
    private readonly EngineGroupRegistry _groups;
    private WebApplication? _app;

    public ScalingApi(EngineGroupRegistry groups) => _groups = groups;

    /// <summary>Where the API listens (<c>http://127.0.0.1:port/</c>) once started.</summary>
    public Uri? Url { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            return;
        }
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        app.MapGet("/api/resources/{name}", (string name) => _groups.Find(name) is { } group
            ? Results.Json(new { name, desiredReplicas = group.DesiredReplicas, maxReplicas = group.MaxReplicas })
            : Error(StatusCodes.Status404NotFound, $"No engine group '{name}'."));
        app.MapPut("/api/resources/{name}/replicas", async (string name, HttpRequest request, CancellationToken token) =>
        {
            if (_groups.Find(name) is not { } group)
            {
                return Error(StatusCodes.Status404NotFound, $"No engine group '{name}'.");
            }
            int replicas;
            try
            {
                var body = await JsonSerializer.DeserializeAsync<JsonObject>(request.Body, cancellationToken: token).ConfigureAwait(false);
                replicas = body?["replicas"]?.GetValue<int>() ?? throw new FormatException("'replicas' is missing.");
            }
            catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
            {
                return Error(StatusCodes.Status400BadRequest, $"The body must be {{\"replicas\": n}} with a whole number n: {e.Message}", param: "replicas");
            }
            if (replicas < 0 || replicas > group.MaxReplicas)
            {
                return Error(StatusCodes.Status400BadRequest, $"'{name}' runs 0 to {group.MaxReplicas} replicas, not {replicas}.", param: "replicas");
            }
            // Declarative, as a Deployment's scale: the count is set now, the replicas follow (the drain alone takes
            // seconds, longer than a caller should wait); failures are in the group's log and dashboard state.
            _ = group.SetDesiredReplicas(replicas);
            return Results.Json(new { name, desiredReplicas = group.DesiredReplicas });
        });
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Url = new Uri(address.TrimEnd('/') + "/");
        _app = app;
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            _app = null;
            await app.StopAsync().ConfigureAwait(false);
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// An error in OpenAI's shape, <c>{"error": {"message", "type", "param", "code"}}</c>, as every VllmStack API answers.
    /// The types are vLLM's for these statuses.
    /// </summary>
    private static IResult Error(int status, string message, string? param = null) =>
        Results.Json(new { error = new { message, type = status switch { 404 => "NotFoundError", 503 => "ServiceUnavailableError", _ => "BadRequestError" }, param, code = status } },
            statusCode: status);
}
