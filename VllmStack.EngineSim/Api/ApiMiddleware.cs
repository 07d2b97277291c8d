using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;
using VllmStack.EngineSim.Faults;

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
            var mode = FaultInjector.Abort(context.Request);
            logger.LogInformation("Failing {Path} mid-stream as the request asked ({Mode})", context.Request.Path, mode);
            await AbortAsync(context, mode);
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

    /// <summary>The message of vLLM's <c>EngineDeadError</c>, which its stream generators pass on as an error frame.</summary>
    public const string EngineDeadMessage = "EngineCore encountered an issue. See stack trace (above) for the root cause.";

    private static async Task AbortAsync(HttpContext context, AbortMode mode)
    {
        var streaming = context.Response.HasStarted && context.Response.ContentType?.StartsWith("text/event-stream", StringComparison.Ordinal) == true;
        try
        {
            if (streaming && mode == AbortMode.ErrorFrame)
            {
                await using var sse = new SseWriter(context.Response);
                await sse.WriteErrorAsync(ApiError.BadRequest(EngineDeadMessage), context.RequestAborted);
                await sse.WriteDoneAsync(context.RequestAborted);
                return;
            }
            if (streaming && mode == AbortMode.Close)
            {
                await context.Response.Body.WriteAsync("data: {\"id\":\"chatcmpl-"u8.ToArray(), context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                // A dying process's kernel still sends what was written; give the transport the moment it needs to do the same.
                await Task.Delay(TimeSpan.FromMilliseconds(50), context.RequestAborted);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The client left first.
        }
        context.Abort();
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

/// <summary>
/// vLLM's <c>--api-key</c> (0.11's <c>AuthenticationMiddleware</c>): every <c>/v1</c> route but CORS preflights needs
/// <c>Authorization: Bearer KEY</c> (the scheme in any case); anything else gets 401 with vLLM's own body,
/// <c>{"error":"Unauthorized"}</c> — a plain string, not an OpenAI error object.
/// </summary>
public sealed class ApiKeyMiddleware(RequestDelegate next, EngineOptions options)
{
    private readonly byte[]? _expected = options.ApiKey is { Length: > 0 } key ? System.Text.Encoding.UTF8.GetBytes(key) : null;

    public Task InvokeAsync(HttpContext context)
    {
        if (_expected is null || HttpMethods.IsOptions(context.Request.Method) || !context.Request.Path.StartsWithSegments("/v1"))
        {
            return next(context);
        }
        var given = context.Request.Headers.Authorization.ToString();
        var space = given.IndexOf(' ');
        var authorised = space > 0 && given.AsSpan(0, space).Equals("bearer", StringComparison.OrdinalIgnoreCase)
            && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(System.Text.Encoding.UTF8.GetBytes(given[(space + 1)..]), _expected);
        if (authorised)
        {
            return next(context);
        }
        context.Response.StatusCode = StatusCodes.Status401Unauthorized;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync("""{"error":"Unauthorized"}""", context.RequestAborted);
    }
}

/// <summary>
/// vLLM's <c>--enable-request-id-headers</c> (<c>XRequestIdMiddleware</c>): every response carries <c>X-Request-Id</c>,
/// the client's own or a new random hex id. Without the flag vLLM sends none, and neither does the simulator.
/// </summary>
public sealed class RequestIdHeaderMiddleware(RequestDelegate next)
{
    public Task InvokeAsync(HttpContext context)
    {
        var id = context.Request.Headers[GenerationEndpoints.RequestIdHeader].ToString();
        if (id.Length == 0)
        {
            id = Guid.NewGuid().ToString("N");
        }
        context.Response.OnStarting(() =>
        {
            context.Response.Headers[GenerationEndpoints.RequestIdHeader] = id;
            return Task.CompletedTask;
        });
        return next(context);
    }
}
