using System.Buffers;
using System.Text.Json;
using System.Text.Unicode;

namespace VllmStack.Router.Forwarding;

/// <summary>
/// Reads a JSON request whole into pooled memory and checks what the router parses anyway: <c>application/json</c>,
/// within the size limit, valid UTF-8, one JSON object, a well-formed <c>model</c>. Anything else is the client's
/// mistake (<see cref="ClientRequestException"/>), answered before an engine sees the request.
/// </summary>
public static class JsonRequestReader
{
    public static async Task<ClientRequest> ReadAsync(HttpRequest request, long limit, string? sessionField, bool wantPrompt, CancellationToken cancellationToken)
    {
        RequestChecks.RequireMediaType(request, "application/json");
        RequestChecks.RequireIdentityEncoding(request);
        RequestChecks.RequireDeclaredLengthWithin(request, limit);
        var (buffer, length) = await ReadBodyAsync(request, limit, cancellationToken).ConfigureAwait(false);
        try
        {
            var inspected = Inspect(buffer.AsSpan(0, length), sessionField, wantPrompt);
            return ClientRequest.Buffered(inspected, buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    public static InspectedRequest Inspect(ReadOnlySpan<byte> body, string? sessionField, bool wantPrompt)
    {
        if (body.IsEmpty)
        {
            throw new ClientRequestException(400, "bad_request", "The request body is empty: a JSON object is expected.");
        }
        if (!Utf8.IsValid(body))
        {
            throw new ClientRequestException(400, "bad_request", "The request body is not valid UTF-8.");
        }
        InspectedRequest inspected;
        try
        {
            inspected = RequestInspector.Inspect(body, sessionField, wantPrompt);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // InvalidOperationException: a string the reader cannot decode, such as an escaped lone surrogate.
            throw new ClientRequestException(400, "bad_request", $"The request body is not valid JSON: {e.Message}");
        }
        RequestChecks.RequireValidModel(inspected);
        return inspected;
    }

    /// <summary>
    /// The whole body in a buffer of <see cref="ArrayPool{T}.Shared"/> (the caller returns it); 413 past
    /// <paramref name="limit"/> without reading further, Kestrel's own rejections with their status (<see cref="ClientRequestException"/>).
    /// </summary>
    public static async Task<(byte[] Buffer, int Length)> ReadBodyAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(limit + 1, Math.Max(4096, request.ContentLength ?? 16 * 1024)));
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > limit)
                    {
                        throw ClientRequestException.TooLarge(limit);
                    }
                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(limit + 1, (long)buffer.Length * 2));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var read = await request.Body.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }
                length += read;
            }
            if (length > limit)
            {
                throw ClientRequestException.TooLarge(limit);
            }
            return (buffer, length);
        }
        catch (BadHttpRequestException e)
        {
            // Kestrel's own limits (size, rate, malformed chunking) still get an OpenAI-style answer.
            ArrayPool<byte>.Shared.Return(buffer);
            throw new ClientRequestException(e.StatusCode, "bad_request", e.Message);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }
}
