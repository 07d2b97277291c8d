using System.Text.Json;

namespace VllmStack.EngineSim.Api;

/// <summary>Typed, validated reads of a request body; every mistake becomes a 400 that names the field.</summary>
internal static class JsonRequest
{
    public static async Task<JsonDocument> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        // vLLM's validate_json_request: the media type must be exactly application/json, and a missing one is refused too.
        var mediaType = (request.ContentType ?? "").Split(';', 2)[0].Trim();
        if (!mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(ApiError.Validation("Unsupported Media Type: Only 'application/json' is allowed"));
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
            if (!VllmStack.ServiceDefaults.Json.JsonEscapes.AllDecodable(bytes.Span))
            {
                document.Dispose();
                // A lone surrogate (\ud800) parses but decodes to no text; vLLM refuses the request, never fails on it.
                throw new ApiException(new ApiError(400, "There was an error parsing the body", "Bad Request"));
            }
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

    /// <summary>A string field; strict as pydantic is (a number is not a string).</summary>
    public static string? String(JsonElement obj, string name)
    {
        if (!TryGet(obj, name, out var value))
        {
            return null;
        }
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw Invalid(name, "a valid string");
    }

    /// <summary>
    /// A boolean as pydantic reads it in lax mode: <c>true</c>/<c>false</c>, 0 or 1, and the strings <c>"true"</c>,
    /// <c>"false"</c>, <c>"yes"</c>, <c>"no"</c>, <c>"on"</c>, <c>"off"</c>, <c>"t"</c>, <c>"f"</c>, <c>"y"</c>, <c>"n"</c>,
    /// <c>"1"</c>, <c>"0"</c> (any case).
    /// </summary>
    public static bool Bool(JsonElement obj, string name, bool defaultValue)
    {
        if (!TryGet(obj, name, out var value))
        {
            return defaultValue;
        }
        switch (value.ValueKind)
        {
            case JsonValueKind.True:
                return true;
            case JsonValueKind.False:
                return false;
            case JsonValueKind.Number when value.TryGetDouble(out var d) && d is 0 or 1:
                return d == 1;
            case JsonValueKind.String:
                switch (value.GetString()!.Trim().ToLowerInvariant())
                {
                    case "true" or "yes" or "on" or "t" or "y" or "1":
                        return true;
                    case "false" or "no" or "off" or "f" or "n" or "0":
                        return false;
                }
                break;
        }
        throw Invalid(name, "a valid boolean");
    }

    /// <summary>
    /// An integer as pydantic reads it in lax mode: a JSON integer, a number with no fractional part (<c>2.0</c>) or a
    /// string holding an integer (<c>"5"</c>); anything else is a validation error. Range checks are the caller's.
    /// </summary>
    public static long? LaxLong(JsonElement obj, string name)
    {
        if (!TryGet(obj, name, out var value))
        {
            return null;
        }
        switch (value.ValueKind)
        {
            case JsonValueKind.Number when value.TryGetInt64(out var integer):
                return integer;
            case JsonValueKind.Number when value.TryGetDouble(out var d) && Math.Floor(d) == d && Math.Abs(d) < 9.2e18:
                return (long)d;
            case JsonValueKind.String when long.TryParse(value.GetString()!.Trim(), System.Globalization.NumberStyles.AllowLeadingSign,
                System.Globalization.CultureInfo.InvariantCulture, out var parsed):
                return parsed;
        }
        throw Invalid(name, "a valid integer");
    }

    /// <summary>A lax integer (see <see cref="LaxLong"/>) that must fit an int.</summary>
    public static int? LaxInt(JsonElement obj, string name)
    {
        var value = LaxLong(obj, name);
        return value is null ? null : value is >= int.MinValue and <= int.MaxValue ? (int)value : throw Invalid(name, "a valid integer that fits 32 bits");
    }

    /// <summary>A number as pydantic reads a float in lax mode: a JSON number or a string holding one.</summary>
    public static double? LaxNumber(JsonElement obj, string name)
    {
        if (!TryGet(obj, name, out var value))
        {
            return null;
        }
        return value.ValueKind switch
        {
            JsonValueKind.Number => value.GetDouble(),
            JsonValueKind.String when double.TryParse(value.GetString()!.Trim(), System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out var parsed) => parsed,
            _ => throw Invalid(name, "a valid number"),
        };
    }

    /// <summary>An integer field with a range (for the simulator's own endpoints); lax as <see cref="LaxInt"/>.</summary>
    public static int? Int(JsonElement obj, string name, int min = int.MinValue, int max = int.MaxValue)
    {
        var number = LaxLong(obj, name);
        if (number is null)
        {
            return null;
        }
        if (number < min || number > max)
        {
            throw new ApiException(ApiError.BadRequest(
                max == int.MaxValue ? $"'{name}' must be at least {min}, got {number}." : $"'{name}' must be between {min} and {max}, got {number}.", name));
        }
        return (int)number;
    }

    public static long? Long(JsonElement obj, string name) => LaxLong(obj, name);

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

    /// <summary>A request that does not fit the API's schema: what vLLM's pydantic validation rejects (400, type "Bad Request").</summary>
    public static ApiException Invalid(string name, string expected) =>
        new(ApiError.Validation($"{name}: Input should be {expected}"));
}
