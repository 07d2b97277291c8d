using System.Globalization;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;

namespace VllmStack.EngineSim.Api;

/// <summary>
/// vLLM 0.11's development routes (<c>vllm/entrypoints/openai/api_server.py</c>, under <c>VLLM_SERVER_DEV_MODE</c>):
/// <c>POST /sleep?level=N</c>, <c>POST /wake_up[?tags=weights&amp;tags=kv_cache]</c> (empty 200s),
/// <c>GET /is_sleeping</c> (<c>{"is_sleeping": bool}</c>) and <c>POST /reset_prefix_cache</c> (an empty 200 whether or
/// not the cache could be reset). Without the variable they are not registered, so they answer 404.
/// </summary>
public static class SleepEndpoints
{
    /// <summary>Registers the routes when <see cref="EngineOptions.ServerDevMode"/> is on.</summary>
    public static void Map(IEndpointRouteBuilder app, EngineOptions options)
    {
        if (!options.ServerDevMode)
        {
            return;
        }
        app.MapPost("/reset_prefix_cache", (HttpContext context, Scheduler scheduler) =>
        {
            // vLLM parses ?device= as a Device name and does not check that the reset happened.
            if (context.Request.Query["device"].ToString() is { Length: > 0 } device && device.ToUpperInvariant() is not ("GPU" or "CPU"))
            {
                return ServerError();
            }
            scheduler.ResetPrefixCache();
            return Results.Ok();
        });
        app.MapPost("/sleep", (HttpContext context, SleepState sleep, ILoggerFactory loggers) =>
        {
            var level = context.Request.Query["level"].ToString();
            // vLLM passes int(level) on unchecked; a level it cannot parse is an unhandled ValueError.
            if (!int.TryParse(level is "" ? "1" : level, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed))
            {
                return ServerError();
            }
            sleep.Sleep();
            loggers.CreateLogger("VllmStack.EngineSim.Sleep").LogInformation(
                "Engine put to sleep (level {Level}); {Effect}", parsed, options.EnableSleepMode ? "GPU memory freed" : "nothing freed without --enable-sleep-mode");
            return Results.Ok();
        });
        app.MapPost("/wake_up", (HttpContext context, SleepState sleep, ILoggerFactory loggers) =>
        {
            string[] tags = [.. context.Request.Query["tags"].Where(t => !string.IsNullOrEmpty(t)).Select(t => t!)];
            if (!sleep.WakeUp(tags))
            {
                loggers.CreateLogger("VllmStack.EngineSim.Sleep").LogWarning("Tags {Tags} are not all asleep; nothing woken", string.Join(',', tags));
            }
            return Results.Ok();
        });
        app.MapGet("/is_sleeping", (SleepState sleep) => Results.Json(new IsSleepingResponse(sleep.IsSleeping), EngineSimJsonContext.Default.IsSleepingResponse));
    }

    /// <summary>What uvicorn answers for an exception no handler takes.</summary>
    private static IResult ServerError() => Results.Text("Internal Server Error", "text/plain; charset=utf-8", statusCode: 500);
}

public sealed record IsSleepingResponse(bool is_sleeping);

[System.Text.Json.Serialization.JsonSerializable(typeof(IsSleepingResponse))]
internal sealed partial class EngineSimJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
