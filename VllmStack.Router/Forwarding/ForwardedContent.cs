using System.Net;

namespace VllmStack.Router.Forwarding;

/// <summary>
/// A request body on its way to an engine, which knows how far it got: a send that fails before the body started
/// (connecting) is the engine's, a send that fails while the body is still going out is ambiguous — the engine may have
/// answered early and closed, refusing the request — and so is never held against it.
/// </summary>
public abstract class ForwardedContent : HttpContent
{
    /// <summary>Sending began: part of the body may have gone.</summary>
    public bool Started { get; private set; }

    /// <summary>The whole body went to the engine.</summary>
    public bool Completed { get; private set; }

    /// <summary>Called once the whole body has gone (an upload's response timer starts only then).</summary>
    public Action? OnCompleted { get; set; }

    protected sealed override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    /// <summary>False for a body read from the client as it goes: the handler must never send it a second time.</summary>
    protected virtual bool CanSendAgain => true;

    protected sealed override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        if (Started && !CanSendAgain)
        {
            // SocketsHttpHandler may resend a request after a stale pooled connection; part of this body is gone already.
            throw new InvalidOperationException("The request body streamed from the client cannot be sent twice.");
        }
        Started = true;
        await WriteBodyAsync(stream, cancellationToken).ConfigureAwait(false);
        Completed = true;
        OnCompleted?.Invoke();
    }

    protected abstract Task WriteBodyAsync(Stream stream, CancellationToken cancellationToken);
}

/// <summary>A body held whole in memory (JSON requests): sent as it is, and again on a retry.</summary>
public sealed class BufferedBodyContent(ReadOnlyMemory<byte> body) : ForwardedContent
{
    protected override Task WriteBodyAsync(Stream stream, CancellationToken cancellationToken) => stream.WriteAsync(body, cancellationToken).AsTask();

    protected override bool TryComputeLength(out long length)
    {
        length = body.Length;
        return true;
    }
}
