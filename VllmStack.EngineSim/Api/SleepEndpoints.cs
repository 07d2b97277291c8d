using VllmStack.EngineSim.Engine;

namespace VllmStack.EngineSim.Api;

/// <summary>vLLM's sleep mode: <c>/sleep?level=1|2</c>, <c>/wake_up</c>, <c>/is_sleeping</c>, and <c>/reset_prefix_cache</c>.</summary>
public static class SleepEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/sleep", (HttpContext context, Scheduler scheduler, ILoggerFactory loggers) =>
        {
            var level = context.Request.Query["level"].ToString();
            if (level is not ("" or "1" or "2"))
            {
                throw new ApiException(ApiError.BadRequest("'level' must be 1 or 2.", "level"));
            }
            scheduler.Sleep();
            loggers.CreateLogger("VllmStack.EngineSim.Sleep").LogInformation("Engine put to sleep (level {Level}); KV cache discarded", level is "" ? "1" : level);
            return Results.Ok();
        });
        app.MapPost("/wake_up", (Scheduler scheduler) =>
        {
            scheduler.WakeUp();
            return Results.Ok();
        });
        app.MapGet("/is_sleeping", (Scheduler scheduler) => Results.Json(new IsSleepingResponse(scheduler.IsSleeping), EngineSimJsonContext.Default.IsSleepingResponse));
        app.MapPost("/reset_prefix_cache", (Scheduler scheduler) =>
            scheduler.ResetPrefixCache()
                ? Results.Ok()
                : throw new ApiException(ApiError.ForStatus(409, "The prefix cache cannot be reset while requests are running.")));
    }
}

public sealed record IsSleepingResponse(bool is_sleeping);

[System.Text.Json.Serialization.JsonSerializable(typeof(IsSleepingResponse))]
internal sealed partial class EngineSimJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
