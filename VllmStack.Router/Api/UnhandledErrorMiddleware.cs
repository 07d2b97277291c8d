namespace VllmStack.Router.Api;

/// <summary>
/// The last resort: an unexpected exception is logged and answered with an OpenAI-style 500 (or, once the
/// response has started, a dropped connection), never an empty body. A client that left is not an error.
/// </summary>
public sealed class UnhandledErrorMiddleware(RequestDelegate next, ILogger<UnhandledErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (Exception e) when (context.RequestAborted.IsCancellationRequested || e is Microsoft.AspNetCore.Connections.ConnectionResetException)
        {
            // The client left (its reset may surface before RequestAborted is set): nothing to answer, nothing wrong here.
        }
        catch (BadHttpRequestException e)
        {
            await ErrorResponses.WriteAsync(context, e.StatusCode, e.Message);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Unhandled error in {Method} {Path}", context.Request.Method, context.Request.Path);
            await ErrorResponses.WriteAsync(context, 500, $"Internal router error: {e.Message}");
        }
    }
}
