using System.Text.Json;

namespace VllmStack.ServiceDefaults.Http;

/// <summary>
/// The error body every VllmStack service answers with, as vLLM's OpenAI server writes it:
/// <c>{"error":{"message","type","param","code"}}</c>, with the type vLLM and OpenAI use for each status.
/// </summary>
public static class OpenAiErrors
{
    public static string TypeFor(int status) => status switch
    {
        400 => "BadRequestError",
        401 => "AuthenticationError",
        403 => "PermissionDeniedError",
        404 => "NotFoundError",
        408 => "TimeoutError",
        409 => "ConflictError",
        413 => "RequestTooLargeError",
        422 => "UnprocessableEntityError",
        429 => "RateLimitError",
        502 => "BadGatewayError",
        503 => "ServiceUnavailableError",
        504 => "GatewayTimeoutError",
        >= 500 => "InternalServerError",
        _ => "BadRequestError",
    };

    /// <param name="code">A string code where OpenAI writes one (e.g. <c>rate_limit_exceeded</c>); else the status, as vLLM writes it.</param>
    public static void Write(Utf8JsonWriter writer, int status, string message, string? type = null, string? param = null, string? code = null)
    {
        writer.WriteStartObject();
        writer.WriteStartObject("error");
        writer.WriteString("message", message);
        writer.WriteString("type", type ?? TypeFor(status));
        if (param is null)
        {
            writer.WriteNull("param");
        }
        else
        {
            writer.WriteString("param", param);
        }
        if (code is null)
        {
            writer.WriteNumber("code", status);
        }
        else
        {
            writer.WriteString("code", code);
        }
        writer.WriteEndObject();
        writer.WriteEndObject();
    }
}
