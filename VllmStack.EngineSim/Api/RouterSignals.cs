using System.Globalization;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;

namespace VllmStack.EngineSim.Api;

/// <summary>
/// What routers and load balancers read from vLLM 0.11 besides the API (<c>vllm/entrypoints/openai/api_server.py</c>):
/// <c>GET /health</c> and <c>GET|POST /ping</c> (an empty 200, or 503 once the engine core is dead), <c>GET /load</c>
/// (<c>{"server_load": N}</c>: requests in flight on the tracked routes with <c>--enable-server-load-tracking</c>, else
/// always 0), and ORCA load reports (<c>orca_metrics.py</c>): a chat or completion request carrying
/// <c>endpoint-load-metrics-format: TEXT|JSON</c> gets an <c>endpoint-load-metrics</c> header on its successful
/// non-streaming response.
/// </summary>
public static class RouterSignals
{
    /// <summary>Request header asking for an ORCA report: <c>TEXT</c> or <c>JSON</c> (any case).</summary>
    public const string LoadMetricsFormatHeader = "endpoint-load-metrics-format";

    /// <summary>Response header carrying it.</summary>
    public const string LoadMetricsHeader = "endpoint-load-metrics";

    /// <summary>The routes vLLM 0.11 wraps in <c>load_aware_call</c>: a request counts from its handler's start to its response's end.</summary>
    private static readonly HashSet<string> TrackedPaths = new(StringComparer.Ordinal)
    {
        "/v1/chat/completions", "/v1/completions", "/v1/audio/transcriptions", "/v1/audio/translations", "/v1/embeddings",
        "/pooling", "/classify", "/score", "/v1/score", "/rerank", "/v1/rerank", "/v2/rerank",
    };

    /// <summary>Answers <c>/health</c> before the shared health checks would, and counts and reports load.</summary>
    public static void Use(WebApplication app, EngineOptions options)
    {
        var scheduler = app.Services.GetRequiredService<Scheduler>();
        var load = app.Services.GetRequiredService<ServerLoad>();
        app.Use(async (context, next) =>
        {
            var request = context.Request;
            if (request.Path.Equals("/health", StringComparison.Ordinal))
            {
                await HealthAsync(context, scheduler, HttpMethods.IsGet(request.Method));
                return;
            }
            if (!HttpMethods.IsPost(request.Method))
            {
                await next(context);
                return;
            }
            var path = request.Path.Value ?? "";
            if (path is "/v1/chat/completions" or "/v1/completions" && request.Headers[LoadMetricsFormatHeader].ToString() is { Length: > 0 } format)
            {
                context.Response.OnStarting(() =>
                {
                    if (context.Response.StatusCode == 200 && context.Response.ContentType?.StartsWith("application/json", StringComparison.Ordinal) == true
                        && OrcaHeader(format, scheduler.Snapshot()) is { } value)
                    {
                        context.Response.Headers[LoadMetricsHeader] = value;
                    }
                    return Task.CompletedTask;
                });
            }
            if (!options.EnableServerLoadTracking || !TrackedPaths.Contains(path))
            {
                await next(context);
                return;
            }
            load.Enter();
            try
            {
                await next(context);
            }
            finally
            {
                load.Leave();
            }
        });
    }

    /// <summary><c>GET /load</c> and <c>GET|POST /ping</c>.</summary>
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/load", (ServerLoad load) => Results.Json(new ServerLoadResponse(load.InFlight), EngineSignalsJsonContext.Default.ServerLoadResponse));
        // SageMaker's probe: the health check under another name.
        app.MapMethods("/ping", [HttpMethods.Get, HttpMethods.Post], (HttpContext context, Scheduler scheduler) => HealthAsync(context, scheduler, true));
    }

    private static Task HealthAsync(HttpContext context, Scheduler scheduler, bool allowed)
    {
        if (!allowed)
        {
            // FastAPI's answer for a route that exists under another method.
            context.Response.StatusCode = 405;
            context.Response.Headers.Allow = HttpMethods.Get;
            context.Response.ContentType = "application/json";
            return context.Response.WriteAsync("""{"detail":"Method Not Allowed"}""");
        }
        context.Response.StatusCode = scheduler.IsDead ? 503 : 200;
        context.Response.ContentLength = 0;
        return Task.CompletedTask;
    }

    /// <summary>
    /// vLLM's <c>create_orca_header</c> over <c>get_named_metrics_from_prometheus</c>: the gauges in the order vLLM
    /// registers them, values as Python prints floats. TEXT: <c>TEXT named_metrics.num_requests_waiting=0.0,
    /// named_metrics.kv_cache_usage_perc=0.25</c>; JSON: <c>JSON {"named_metrics": {…}}</c>; any other format: none.
    /// </summary>
    internal static string? OrcaHeader(string format, SchedulerSnapshot snapshot)
    {
        (string Name, string Value)[] metrics =
        [
            ("num_requests_waiting", PythonFloat(snapshot.Waiting)),
            ("kv_cache_usage_perc", PythonFloat(snapshot.KvCacheUsage)),
        ];
        return format.ToLowerInvariant() switch
        {
            "text" => "TEXT " + string.Join(", ", metrics.Select(m => $"named_metrics.{m.Name}={m.Value}")),
            "json" => "JSON {\"named_metrics\": {" + string.Join(", ", metrics.Select(m => $"\"{m.Name}\": {m.Value}")) + "}}",
            _ => null,
        };
    }

    /// <summary>Python's <c>repr(float)</c>: shortest round-trip digits, <c>.0</c> on whole numbers, <c>1e-05</c> style exponents.</summary>
    internal static string PythonFloat(double value)
    {
        var text = value.ToString("R", CultureInfo.InvariantCulture).Replace("E", "e", StringComparison.Ordinal);
        return text.Contains('.') || text.Contains('e') || !double.IsFinite(value) ? text : text + ".0";
    }
}

/// <summary>vLLM's <c>app.state.server_load_metrics</c>: requests in flight on the tracked routes.</summary>
public sealed class ServerLoad
{
    private long _inFlight;

    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>A tracked request's handler starts.</summary>
    public void Enter() => Interlocked.Increment(ref _inFlight);

    /// <summary>Its response has ended, however it ended.</summary>
    public void Leave() => Interlocked.Decrement(ref _inFlight);
}

public sealed record ServerLoadResponse(long server_load);

[System.Text.Json.Serialization.JsonSerializable(typeof(ServerLoadResponse))]
internal sealed partial class EngineSignalsJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
