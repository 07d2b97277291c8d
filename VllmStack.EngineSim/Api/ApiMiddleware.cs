using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;

namespace VllmStack.EngineSim.Api;

/// <summary>
/// Turns every failure into the answer vLLM would give: API errors as OpenAI-style JSON with their status,
/// bodies the server cannot read as 400, an injected crash as a dropped connection, anything else as a 500
/// that says what happened. Once a stream has started, an error becomes an error frame and <c>[DONE]</c>.
/// </summary>
public sealed class ApiErrorMiddleware(RequestDelegate next, ILogger<ApiErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (SimulatedCrashException)
        {
            logger.LogInformation("Dropping {Path} mid-stream as the request asked", context.Request.Path);
            context.Abort();
        }
        catch (Exception e) when (context.RequestAborted.IsCancellationRequested && e is not ApiException)
        {
            // The client went away (a cancelled wait or a write to a closed connection); its sequences are released.
        }
        catch (ApiException e)
        {
            await WriteAsync(context, e.Error);
        }
        catch (EngineDeadException)
        {
            // vLLM 0.11 words it differently before and after a stream's headers (FaultInjector.EngineDead*).
            await WriteAsync(context, context.Response.HasStarted ? Faults.FaultInjector.EngineDeadInStream : Faults.FaultInjector.EngineDead);
        }
        catch (BadHttpRequestException e)
        {
            await WriteAsync(context, ApiError.ForStatus(e.StatusCode is >= 400 and < 500 ? e.StatusCode : 400, e.Message));
        }
        catch (Exception e)
        {
            logger.LogError(e, "Request {Method} {Path} failed", context.Request.Method, context.Request.Path);
            await WriteAsync(context, ApiError.ForStatus(500, $"Internal error: {e.Message}"));
        }
    }

    private static async Task WriteAsync(HttpContext context, ApiError error)
    {
        if (!context.Response.HasStarted)
        {
            context.Response.Clear();
            await error.WriteAsync(context.Response);
            return;
        }
        if (context.Response.ContentType?.StartsWith("text/event-stream", StringComparison.Ordinal) == true)
        {
            await using var sse = new SseWriter(context.Response);
            await sse.WriteErrorAsync(error, context.RequestAborted);
            await sse.WriteDoneAsync(context.RequestAborted);
            return;
        }
        context.Abort();
    }
}

/// <summary>vLLM's <c>--api-key</c>: every <c>/v1</c> route needs <c>Authorization: Bearer KEY</c>.</summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, EngineOptions options)
{
    private readonly string? _expected = options.ApiKey is { Length: > 0 } key ? "Bearer " + key : null;

    public Task InvokeAsync(HttpContext context)
    {
        if (_expected is null || !context.Request.Path.StartsWithSegments("/v1"))
        {
            return next(context);
        }
        var given = context.Request.Headers.Authorization.ToString();
        if (System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
                System.Text.Encoding.UTF8.GetBytes(given), System.Text.Encoding.UTF8.GetBytes(_expected)))
        {
            return next(context);
        }
        return ApiError.Unauthorized().WriteAsync(context.Response);
    }
}
