using System.Text.Json;
using VllmStack.CacheServer.Pool;
using VllmStack.ServiceDefaults.Http;

namespace VllmStack.CacheServer.Api;

/// <summary>OpenAI-style errors, as every VllmStack service answers them.</summary>
public static class ErrorResults
{
    public static IResult Error(int status, string message, string? param = null, TimeSpan? retryAfter = null) =>
        new ErrorResult(status, message, param, retryAfter);

    private sealed class ErrorResult(int status, string message, string? param, TimeSpan? retryAfter) : IResult
    {
        public async Task ExecuteAsync(HttpContext context)
        {
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
            if (retryAfter is { } after)
            {
                context.Response.Headers.RetryAfter = ((int)Math.Ceiling(after.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            await using var writer = new Utf8JsonWriter(context.Response.BodyWriter);
            OpenAiErrors.Write(writer, status, message, param: param);
            await writer.FlushAsync(context.RequestAborted);
        }
    }
}

/// <summary>Client mistakes become 400s, a down Redis a 503 with Retry-After; nothing else leaks as an empty 500.</summary>
public sealed class ErrorMiddleware(RequestDelegate next, ILogger<ErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (Exception) when (context.RequestAborted.IsCancellationRequested)
        {
        }
        catch (BadRequestException e)
        {
            await ErrorResults.Error(400, e.Message, e.Param).ExecuteAsync(context);
        }
        catch (BadHttpRequestException e)
        {
            await ErrorResults.Error(e.StatusCode, e.Message).ExecuteAsync(context);
        }
        catch (EndOfStreamException)
        {
            await ErrorResults.Error(400, "The body ended before its Content-Length.").ExecuteAsync(context);
        }
        catch (PoolUnavailableException e)
        {
            await ErrorResults.Error(503, e.Message, retryAfter: TimeSpan.FromSeconds(1)).ExecuteAsync(context);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Request {Method} {Path} failed", context.Request.Method, context.Request.Path);
            if (!context.Response.HasStarted)
            {
                await ErrorResults.Error(500, $"Internal error: {e.Message}").ExecuteAsync(context);
            }
        }
    }
}
