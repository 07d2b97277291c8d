using System.Text.Json;
using VllmStack.ServiceDefaults.Http;

namespace VllmStack.EngineSim.Api;

/// <summary>An error as vLLM's OpenAI server reports it: <c>{"error":{"message","type","param","code"}}</c>.</summary>
public sealed record ApiError(int Status, string Message, string Type, string? Param = null)
{
    /// <summary>A request the serving layer refuses (vLLM's <c>create_error_response</c>: type <c>BadRequestError</c>).</summary>
    public static ApiError BadRequest(string message, string? param = null) => new(400, message, "BadRequestError", param);

    /// <summary>
    /// A request that fails vLLM's schema validation before any serving code runs (pydantic and FastAPI's
    /// <c>RequestValidationError</c>, answered by vLLM's <c>validation_exception_handler</c> with the status's phrase as type).
    /// </summary>
    public static ApiError Validation(string message) => new(400, message, "Bad Request");

    public static ApiError NotFound(string message, string? param = null) => new(404, message, "NotFoundError", param);

    public static ApiError Unauthorized(string message = "Unauthorized: a valid API key is required.") => new(401, message, "AuthenticationError");

    public static ApiError ModelNotFound(string model) => NotFound($"The model `{model}` does not exist.", "model");

    public static ApiError ForStatus(int status, string message) => new(status, message, OpenAiErrors.TypeFor(status));

    public void WriteTo(Utf8JsonWriter writer) => OpenAiErrors.Write(writer, Status, Message, Type, Param);

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
