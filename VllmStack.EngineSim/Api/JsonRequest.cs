using System.Text.Json;

namespace VllmStack.EngineSim.Api;

/// <summary>Typed, validated reads of a request body; every mistake becomes a 400 that names the field.</summary>
internal static class JsonRequest
{
    public static async Task<JsonDocument> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        if (request.ContentType is { } contentType && !contentType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(ApiError.BadRequest($"Content-Type must be application/json, not '{contentType}'."));
        }
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body, cancellationToken);
        var bytes = body.GetBuffer().AsMemory(0, (int)body.Length);
        if (!System.Text.Unicode.Utf8.IsValid(bytes.Span))
        {
            // What vLLM's FastAPI answers for a body it cannot decode (http_exception_handler: the detail, the status's phrase).
            throw new ApiException(new ApiError(400, "There was an error parsing the body", "Bad Request"));
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new ApiException(ApiError.BadRequest($"The request body is not valid JSON: {e.Message}"));
        }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw new ApiException(ApiError.BadRequest("The request body must be a JSON object."));
        }
        return document;
    }

    /// <summary>
    /// vLLM's <c>validate_json_request</c> dependency: the media type must be exactly <c>application/json</c> (any
    /// parameters), a missing Content-Type included; else FastAPI's 400 with the validation error's text.
    /// </summary>
    public static void RequireJsonMediaType(HttpRequest request)
    {
        var mediaType = (request.ContentType ?? "").Split(';', 2)[0];
        if (!mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(new ApiError(400, "[\"Unsupported Media Type: Only 'application/json' is allowed\"]", "Bad Request"));
        }
    }

    public static bool TryGet(JsonElement obj, string name, out JsonElement value) =>
        obj.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    public static string? String(JsonElement obj, string name)
    {
        if (!TryGet(obj, name, out var value))
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw Invalid(name, "a string");
    }

    public static bool Bool(JsonElement obj, string name, bool defaultValue)
    {
        if (!TryGet(obj, name, out var value))
        {
            return defaultValue;
        }
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Invalid(name, "a boolean"),
        };
    }

    public static int? Int(JsonElement obj, string name, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!TryGet(obj, name, out var value))
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var number))
        {
            throw Invalid(name, "an integer");
        }
        if (number < min || number > max)
        {
            throw new ApiException(ApiError.BadRequest(
                max == int.MaxValue ? $"'{name}' must be at least {min}, got {number}." : $"'{name}' must be between {min} and {max}, got {number}.", name));
        }
        return (int)number;
    }

    public static long? Long(JsonElement obj, string name)
    {
        if (!TryGet(obj, name, out var value))
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number) ? number : throw Invalid(name, "an integer");
    }

    public static double? Number(JsonElement obj, string name, double min, double max)
    {
        if (!TryGet(obj, name, out var value))
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.Number)
        {
            throw Invalid(name, "a number");
        }
        var number = value.GetDouble();
        if (number < min || number > max)
        {
            throw new ApiException(ApiError.BadRequest($"'{name}' must be between {min} and {max}, got {number}.", name));
        }
        return number;
    }

    /// <summary>A string or an array of strings (OpenAI's <c>stop</c>).</summary>
    public static IReadOnlyList<string> StringOrStrings(JsonElement obj, string name)
    {
        if (!TryGet(obj, name, out var value))
        {
            return [];
        }
        if (value.ValueKind == JsonValueKind.String)
        {
            return value.GetString() is { Length: > 0 } s ? [s] : [];
        }
        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Invalid(name, "a string or an array of strings");
        }
        var result = new List<string>();
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
            {
                throw Invalid(name, "a string or an array of strings");
            }
            if (item.GetString() is { Length: > 0 } s)
            {
                result.Add(s);
            }
        }
        return result;
    }

    public static IReadOnlyList<int> Ints(JsonElement obj, string name)
    {
        if (!TryGet(obj, name, out var value))
        {
            return [];
        }
        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Invalid(name, "an array of integers");
        }
        var result = new List<int>(value.GetArrayLength());
        foreach (var item in value.EnumerateArray())
        {
            result.Add(item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out var n) ? n : throw Invalid(name, "an array of integers"));
        }
        return result;
    }

    public static ApiException Invalid(string name, string expected) =>
        new(ApiError.BadRequest($"'{name}' must be {expected}.", name));
}
