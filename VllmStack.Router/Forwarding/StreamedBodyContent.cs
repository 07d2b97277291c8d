namespace VllmStack.Router.Forwarding;

/// <summary>
/// An upload sent to an engine as it arrives: the head the router already read, then the rest of the client's body.
/// A failure on the client's side (a broken upload, the size limit) is recorded here, so that it is never taken for
/// the engine's failure; an engine that stops taking the body for <paramref name="writeTimeout"/> is the engine's.
/// </summary>
public sealed class StreamedBodyContent(ReadOnlyMemory<byte> head, Stream rest, long? totalLength, long limit, TimeSpan writeTimeout) : ForwardedContent
{
    private const int CopyBufferSize = 64 * 1024;

    /// <summary>Set when the client's body failed or grew past the limit; the send then fails with it as inner exception.</summary>
    public ClientBodyException? ClientFailure { get; private set; }

    protected override bool CanSendAgain => false;

    protected override async Task WriteBodyAsync(Stream stream, CancellationToken cancellationToken)
    {
        await WriteToEngineAsync(stream, head, cancellationToken).ConfigureAwait(false);
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
            await WriteToEngineAsync(stream, buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task WriteToEngineAsync(Stream stream, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken)
    {
        using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stall.CancelAfter(writeTimeout);
        try
        {
            await stream.WriteAsync(bytes, stall.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new EngineStalledException($"the engine took no request body for {writeTimeout.TotalSeconds:0.#} s");
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = totalLength ?? 0;
        return totalLength is not null;
    }
}

/// <summary>The engine stopped taking the request body: the engine's failure, like a timeout before its headers.</summary>
public sealed class EngineStalledException(string message) : IOException(message);

/// <summary>The client's own body failed while it streamed to an engine.</summary>
public sealed class ClientBodyException(string message, bool tooLarge, Exception? inner = null) : IOException(message, inner)
{
    /// <summary>The body grew past the size limit (413), rather than breaking off (400).</summary>
    public bool TooLarge { get; } = tooLarge;
}
