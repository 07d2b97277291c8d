using System.Buffers;

namespace VllmStack.Router.Forwarding;

/// <summary>
/// A client's request as read for routing: what routing needs (model, session key, prompt) and the body to send to
/// engines — either held whole in pooled memory (JSON: resent as it is on a retry) or a head already read plus the
/// rest still streaming from the client (multipart uploads: resendable only until the rest starts flowing).
/// </summary>
public sealed class ClientRequest : IDisposable
{
    private readonly byte[]? _pooled;
    private readonly ReadOnlyMemory<byte> _body;
    private readonly StreamedBody? _streamed;
    private AttemptBody? _lastStreamed;

    /// <summary>The rest of an upload, still in the client's connection, and what it may add up to.</summary>
    private sealed record StreamedBody(Stream Rest, long Limit);

    private ClientRequest(InspectedRequest inspected, byte[]? pooled, ReadOnlyMemory<byte> body, StreamedBody? streamed)
    {
        Inspected = inspected;
        _pooled = pooled;
        _body = body;
        _streamed = streamed;
    }

    public InspectedRequest Inspected { get; }

    /// <summary>The whole JSON body (empty for a streamed upload): what KV-aware routing tokenizes.</summary>
    public ReadOnlyMemory<byte> JsonBody => _streamed is null ? _body : ReadOnlyMemory<byte>.Empty;

    /// <summary>False once part of a streamed body has gone to an engine: it cannot be sent again.</summary>
    public bool CanResend => _lastStreamed is null || !_lastStreamed.Started;

    /// <summary>The body of the last attempt of a streamed upload: its client-side failures are the request's problems.</summary>
    public AttemptBody? LastBody => _lastStreamed;

    /// <summary>True when the body is held whole (JSON): its length is known and it can be sent again.</summary>
    public bool IsBuffered => _streamed is null;

    /// <summary>A JSON body held in <paramref name="pooled"/> (from <see cref="ArrayPool{T}.Shared"/>, returned on dispose).</summary>
    public static ClientRequest Buffered(InspectedRequest inspected, byte[] pooled, int length) =>
        new(inspected, pooled, pooled.AsMemory(0, length), null);

    /// <summary>
    /// A body whose first <paramref name="headLength"/> bytes were read into <paramref name="pooledHead"/> (returned on dispose)
    /// and whose rest streams from <paramref name="rest"/> when sent; <paramref name="limit"/> bounds the whole.
    /// </summary>
    public static ClientRequest Streamed(InspectedRequest inspected, byte[] pooledHead, int headLength, Stream rest, long limit) =>
        new(inspected, pooledHead, pooledHead.AsMemory(0, headLength), new StreamedBody(rest, limit));

    /// <summary>
    /// The body of one attempt, timed by <paramref name="timer"/> (see <see cref="AttemptBody"/>); for a streamed body,
    /// only while <see cref="CanResend"/>. A held body is handed out from the same memory every time, never copied.
    /// </summary>
    public AttemptBody CreateBody(AttemptTimer timer)
    {
        if (_streamed is null)
        {
            return new AttemptBody(_body, null, _body.Length, timer);
        }
        if (!CanResend)
        {
            throw new InvalidOperationException("The streamed body was already sent.");
        }
        return _lastStreamed = new AttemptBody(_body, _streamed.Rest, _streamed.Limit, timer);
    }

    public void Dispose()
    {
        if (_pooled is not null)
        {
            ArrayPool<byte>.Shared.Return(_pooled);
        }
    }
}
