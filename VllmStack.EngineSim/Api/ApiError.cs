using System.Text.Json;

namespace VllmStack.EngineSim.Api;

/// <summary>An error as vLLM's OpenAI server reports it: <c>{"error":{"message","type","param","code"}}</c>.</summary>
public sealed record ApiError(int Status, string Message, string Type, string? Param = null)
{
    public static ApiError BadRequest(string message, string? param = null) => new(400, message, "BadRequestError", param);

    public static ApiError NotFound(string message, string? param = null) => new(404, message, "NotFoundError", param);

    public static ApiError Unauthorized(string message = "Unauthorized: a valid API key is required.") => new(401, message, "AuthenticationError");

    public static ApiError ModelNotFound(string model) => NotFound($"The model `{model}` does not exist.", "model");

    /// <summary>An error of the given status with the type vLLM and OpenAI use for it.</summary>
    public static ApiError ForStatus(int status, string message) => new(status, message, status switch
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
        503 => "ServiceUnavailableError",
        >= 500 => "InternalServerError",
        _ => "BadRequestError",
    });

    public void WriteTo(Utf8JsonWriter writer)
    {
        writer.WriteStartObject();
        writer.WriteStartObject("error");
        writer.WriteString("message", Message);
        writer.WriteString("type", Type);
        if (Param is null)
        {
            writer.WriteNull("param");
        }
        else
        {
            writer.WriteString("param", Param);
        }
        writer.WriteNumber("code", Status);
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    public async Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        response.ContentType = "application/json";
        await using var writer = JsonWriting.Create(response.BodyWriter);
        WriteTo(writer);
        await writer.FlushAsync(response.HttpContext.RequestAborted);
    }
}

/// <summary>Thrown anywhere while handling a request to answer it with <see cref="Error"/>.</summary>
public sealed class ApiException(ApiError error) : Exception(error.Message)
{
    public ApiError Error { get; } = error;
}
