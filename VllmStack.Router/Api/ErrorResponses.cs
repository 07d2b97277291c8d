using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.AspNetCore.WebUtilities;
using VllmStack.ServiceDefaults.Http;

namespace VllmStack.Router.Api;

/// <summary>OpenAI-style errors, <c>{"error":{"message","type","param","code"}}</c>, the way the engines write them.</summary>
public static class ErrorResponses
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static byte[] Body(int status, string message, string? param = null, string? type = null, string? code = null)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, Options))
        {
            OpenAiErrors.Write(w, status, message, type, param, code);
        }
        return stream.ToArray();
    }

    /// <summary>What a status the framework set without a body means for this request.</summary>
    public static string DefaultMessage(HttpContext context) => context.Response.StatusCode switch
    {
        405 => $"Method {context.Request.Method} is not allowed on {context.Request.Path}; allowed: {context.Response.Headers.Allow}.",
        404 => $"No route for {context.Request.Method} {context.Request.Path}.",
        var status => $"{ReasonPhrases.GetReasonPhrase(status)} ({context.Request.Method} {context.Request.Path}).",
    };

    /// <summary>
    /// 429 as OpenAI's API writes it: <c>type</c> <c>requests</c> or <c>tokens</c> (the limit reached), <c>code</c>
    /// <c>rate_limit_exceeded</c> (clients tell it from <c>insufficient_quota</c>, which is not worth retrying), <c>param</c> null.
    /// </summary>
    public static Task WriteRateLimitAsync(HttpContext context, string type, string message, TimeSpan retryAfter) =>
        WriteAsync(context, 429, message, retryAfter: retryAfter, type: type, code: "rate_limit_exceeded");

    public static async Task WriteAsync(HttpContext context, int status, string message, string? param = null, TimeSpan? retryAfter = null,
        string? type = null, string? code = null)
    {
        var response = context.Response;
        if (response.HasStarted)
        {
            context.Abort();
            return;
        }
        response.StatusCode = status;
        response.ContentType = "application/json";
        if (retryAfter is { } after)
        {
            response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        await response.Body.WriteAsync(Body(status, message, param, type, code), context.RequestAborted);
    }
}
