using Microsoft.Net.Http.Headers;

namespace VllmStack.Router.Forwarding;

/// <summary>Checks every forwarded request passes before its body is read; each failure is a 4xx that names the problem.</summary>
public static class RequestChecks
{
    /// <summary>Longest <c>model</c> accepted: far beyond any Hugging Face repository id, adapter name or local path.</summary>
    public const int MaxModelLength = 1024;

    /// <summary>415 unless the body is sent as it is: the router reads it, and vLLM decodes no <c>Content-Encoding</c> either.</summary>
    public static void RequireIdentityEncoding(HttpRequest request)
    {
        var encoding = request.Headers.ContentEncoding.ToString();
        if (encoding.Length > 0 && !encoding.Equals("identity", StringComparison.OrdinalIgnoreCase))
        {
            throw new ClientRequestException(415, "unsupported_media_type", $"Content-Encoding '{encoding}' is not supported: send the body uncompressed.");
        }
    }

    /// <summary>415 unless the Content-Type is <paramref name="mediaType"/> (parameters such as charset allowed).</summary>
    public static MediaTypeHeaderValue RequireMediaType(HttpRequest request, string mediaType)
    {
        var given = request.ContentType;
        if (string.IsNullOrEmpty(given))
        {
            throw new ClientRequestException(415, "unsupported_media_type", $"Content-Type is missing: this route takes {mediaType}.");
        }
        if (!MediaTypeHeaderValue.TryParse(given, out var parsed) || !parsed.MediaType.Equals(mediaType, StringComparison.OrdinalIgnoreCase))
        {
            throw new ClientRequestException(415, "unsupported_media_type", $"Content-Type '{given}' is not supported: this route takes {mediaType}.");
        }
        return parsed;
    }

    /// <summary>413 when the declared length is over <paramref name="limit"/>, before any of it is read.</summary>
    public static void RequireDeclaredLengthWithin(HttpRequest request, long limit)
    {
        if (request.ContentLength > limit)
        {
            throw new ClientRequestException(413, "body_too_large", $"The request body ({request.ContentLength} bytes) exceeds the limit of {limit} bytes.");
        }
    }

    /// <summary>400 for a <c>model</c> that is empty, too long, or not a string.</summary>
    public static void RequireValidModel(InspectedRequest inspected)
    {
        if (inspected.ModelNotString)
        {
            throw new ClientRequestException(400, "bad_request", "'model' must be a string.", "model");
        }
        if (inspected.Model is { } model && (model.Length == 0 || model.Length > MaxModelLength))
        {
            throw new ClientRequestException(400, "bad_request",
                model.Length == 0 ? "'model' must not be empty." : $"'model' is longer than {MaxModelLength} characters.", "model");
        }
    }
}
