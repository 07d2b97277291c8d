using System.Net;

namespace VllmStack.Router.Forwarding;

/// <summary>
/// An upload sent to an engine as it arrives: the head the router already read, then the rest of the client's body.
/// A failure on the client's side (a broken upload, the size limit) is recorded here, so that it is never taken for
/// the engine's failure.
/// </summary>
public sealed class StreamedBodyContent(ReadOnlyMemory<byte> head, Stream rest, long? totalLength, long limit) : HttpContent
{
    private const int CopyBufferSize = 64 * 1024;

    /// <summary>True once sending began: part of the client's body may be gone, so it cannot be sent again.</summary>
    public bool Started { get; private set; }

    /// <summary>Set when the client's body failed or grew past the limit; the send then fails with it as inner exception.</summary>
    public ClientBodyException? ClientFailure { get; private set; }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        Started = true;
        await stream.WriteAsync(head, cancellationToken).ConfigureAwait(false);
        long sent = head.Length;
        var buffer = new byte[CopyBufferSize];
        while (true)
        {
            int read;
            try
            {
                read = await rest.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                throw ClientFailure = new ClientBodyException($"The request body could not be read: {e.Message}", tooLarge: false, e);
            }
            if (read == 0)
            {
                return;
            }
            sent += read;
            if (sent > limit)
            {
                throw ClientFailure = new ClientBodyException($"The request body exceeds the limit of {limit} bytes.", tooLarge: true);
            }
            await stream.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = totalLength ?? 0;
        return totalLength is not null;
    }
}

/// <summary>The client's own body failed while it streamed to an engine.</summary>
public sealed class ClientBodyException(string message, bool tooLarge, Exception? inner = null) : IOException(message, inner)
{
    /// <summary>The body grew past the size limit (413), rather than breaking off (400).</summary>
    public bool TooLarge { get; } = tooLarge;
}
