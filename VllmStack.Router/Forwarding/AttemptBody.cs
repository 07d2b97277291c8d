namespace VllmStack.Router.Forwarding;

/// <summary>
/// The request body of one attempt, as YARP reads it from <c>HttpContext.Request.Body</c>: the bytes the router already
/// read (a whole JSON body, or the head of an upload), then for an upload the rest as it streams from the client. It
/// knows how far the body got (a failure while it is still going out is ambiguous, never the engine's), records the
/// client's own failures (a broken upload, the size limit), and times the engine: between two reads the engine is
/// taking the last chunk, and once the body has all gone the engine owes its response headers.
/// </summary>
public sealed class AttemptBody(ReadOnlyMemory<byte> head, Stream? rest, long limit, AttemptTimer timer) : AsyncReadStream
{
    private int _headSent;
    private long _sent;

    /// <summary>The first byte was asked for: part of the body may have gone.</summary>
    public bool Started { get; private set; }

    /// <summary>The whole body was read out to the engine connection.</summary>
    public bool Completed { get; private set; }

    /// <summary>Set when the client's body failed or grew past the limit; YARP reports it as <c>RequestBodyClient</c>.</summary>
    public ClientBodyException? ClientFailure { get; private set; }

    /// <summary>A body held whole (a JSON request): nothing streams from the client.</summary>
    public bool IsHeld => rest is null;

    /// <summary>The length of a held body.</summary>
    public int HeldLength => head.Length;

    /// <summary>
    /// Writes a held body to the engine connection in one write (again, in full, if the handler resends the request on
    /// a fresh connection), timed as the reads are.
    /// </summary>
    public async ValueTask WriteHeldAsync(Stream stream, CancellationToken cancellationToken)
    {
        timer.Disarm();
        Started = true;
        Handed(head.Length);
        await stream.WriteAsync(head, cancellationToken).ConfigureAwait(false);
        _headSent = head.Length;
        _sent = head.Length;
        Handed(0);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        // Reading is the router's or the client's time: the engine took everything handed to it so far.
        timer.Disarm();
        if (destination.IsEmpty || Completed)
        {
            return 0;
        }
        Started = true;
        if (_headSent < head.Length)
        {
            var count = Math.Min(destination.Length, head.Length - _headSent);
            head.Slice(_headSent, count).CopyTo(destination);
            _headSent += count;
            _sent += count;
            return Handed(count);
        }
        if (rest is null)
        {
            return Handed(0);
        }
        int read;
        try
        {
            read = await rest.ReadAsync(destination, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw ClientFailure = new ClientBodyException($"The request body could not be read: {e.Message}", tooLarge: false, e);
        }
        _sent += read;
        if (_sent > limit)
        {
            throw ClientFailure = new ClientBodyException($"The request body exceeds the limit of {limit} bytes.", tooLarge: true);
        }
        return Handed(read);
    }

    private int Handed(int count)
    {
        if (count == 0)
        {
            Completed = true;
            timer.AwaitResponseHeaders();
        }
        else
        {
            timer.AwaitBodyTaken();
        }
        return count;
    }

    protected override string BodyName => "The request body";

    protected override long BytesRead => _sent;
}

/// <summary>The client's own body failed while it streamed to an engine.</summary>
public sealed class ClientBodyException(string message, bool tooLarge, Exception? inner = null) : IOException(message, inner)
{
    /// <summary>The body grew past the size limit (413), rather than breaking off (400).</summary>
    public bool TooLarge { get; } = tooLarge;
}
