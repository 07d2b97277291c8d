using System.Text;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace VllmStack.Router.Forwarding;

/// <summary>
/// Reads a <c>multipart/form-data</c> upload (audio transcription and translation) only as far as its <c>model</c>
/// field, with ASP.NET's own multipart parser; what was read is kept and sent first, the rest streams from the client
/// to the engine. With <c>model</c> before <c>file</c> (as the OpenAI Python SDK sends it) the audio is never held;
/// after it, the audio is held up to <c>Router:MaxRequestBodyBytes</c> while the router looks for the model.
/// </summary>
public static class MultipartRequestReader
{
    /// <summary>Longest part header block accepted (Kestrel's own header limit is 32 KiB).</summary>
    private const int MaxPartHeaderBytes = 16 * 1024;

    /// <param name="headLimit">Bytes that may be held while looking for <c>model</c>.</param>
    /// <param name="uploadLimit">Bytes the whole upload may have.</param>
    public static async Task<ClientRequest> ReadAsync(HttpRequest request, long headLimit, long uploadLimit, CancellationToken cancellationToken)
    {
        var contentType = RequestChecks.RequireMediaType(request, "multipart/form-data");
        RequestChecks.RequireIdentityEncoding(request);
        RequestChecks.RequireDeclaredLengthWithin(request, uploadLimit);
        var boundary = HeaderUtilities.RemoveQuotes(contentType.Boundary).Value;
        if (string.IsNullOrEmpty(boundary) || boundary.Length > 70)
        {
            throw new ClientRequestException(400, "bad_request", "The multipart Content-Type needs a boundary of 1 to 70 characters.");
        }

        var head = new RecordingReadStream(request.Body, Math.Min(headLimit, uploadLimit));
        try
        {
            var model = await FindModelAsync(new MultipartReader(boundary, head) { HeadersLengthLimit = MaxPartHeaderBytes }, cancellationToken).ConfigureAwait(false);
            var inspected = new InspectedRequest(model, null, null);
            RequestChecks.RequireValidModel(inspected);
            var length = head.RecordedLength;
            return ClientRequest.Streamed(inspected, head.DetachBuffer(), length, request.Body, uploadLimit);
        }
        catch (BadHttpRequestException e)
        {
            throw new ClientRequestException(e.StatusCode, "bad_request", e.Message);
        }
        catch (Exception e) when (e is InvalidDataException || (e is IOException && !cancellationToken.IsCancellationRequested))
        {
            // The parser's words for a body that is not multipart as declared: bad boundary or part headers
            // (InvalidDataException), or a body that ends before its closing boundary (IOException).
            throw new ClientRequestException(400, "bad_request", $"The multipart body is malformed: {e.Message}");
        }
        finally
        {
            await head.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The value of the first form field named <c>model</c>; null when the body has none.</summary>
    private static async Task<string?> FindModelAsync(MultipartReader reader, CancellationToken cancellationToken)
    {
        while (await reader.ReadNextSectionAsync(cancellationToken).ConfigureAwait(false) is { } section)
        {
            if (ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition)
                && disposition.IsFormDisposition()
                && HeaderUtilities.RemoveQuotes(disposition.Name).Equals("model", StringComparison.Ordinal))
            {
                return await ReadFieldAsync(section.Body, cancellationToken).ConfigureAwait(false);
            }
            // Other parts (the audio among them) pass through the recording unread by anyone but the parser.
            await section.Body.CopyToAsync(Stream.Null, cancellationToken).ConfigureAwait(false);
        }
        return null;
    }

    private static async Task<string> ReadFieldAsync(Stream body, CancellationToken cancellationToken)
    {
        var buffer = new byte[RequestChecks.MaxModelLength * 4 + 1];
        var length = await body.ReadAtLeastAsync(buffer, buffer.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
        if (length == buffer.Length)
        {
            throw new ClientRequestException(400, "bad_request", $"'model' is longer than {RequestChecks.MaxModelLength} characters.", "model");
        }
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer, 0, length);
        }
        catch (DecoderFallbackException)
        {
            throw new ClientRequestException(400, "bad_request", "'model' is not valid UTF-8.", "model");
        }
    }
}
