using System.Diagnostics;
using System.Net;
using VllmStack.Router.Api;
using VllmStack.Router.Health;
using VllmStack.Router.Stats;

namespace VllmStack.Router.Forwarding;

/// <summary>How relaying an engine's response body to the client ended.</summary>
/// <param name="ClientLeft">The client went away before the end.</param>
/// <param name="EngineFailure">Set when the engine failed after its headers (nothing more can be retried).</param>
/// <param name="FirstByte">Timestamp (<see cref="Stopwatch"/>) of the engine's first body byte; 0 if none came.</param>
/// <param name="LastByte">Timestamp of the engine's last body chunk.</param>
/// <param name="Migrations">Continuations at other engines the stream needed (their failures are accounted as they happen).</param>
/// <param name="MigrationFailed">An engine failed and the stream could not be continued: it ended with the error frame.</param>
/// <param name="FailureAccounted">The first engine failed under a followed stream and was held to account then.</param>
public sealed record RelayResult(bool ClientLeft, EngineFailureKind? EngineFailure, string? Detail, long FirstByte, long LastByte, int Chunks,
    int Migrations = 0, bool MigrationFailed = false, bool FailureAccounted = false);

/// <summary>
/// The engine's response body as YARP copies it to the client (YARP writes each read through, so server-sent events
/// reach the client chunk by chunk, byte for byte). Two engine silences are bounded separately: until the first body
/// byte (a stream may wait minutes in the engine's queue; SSE comments keep the client's connection alive meanwhile)
/// and between chunks once the body flows. Only reads are timed, never a slow client's writes. If the engine fails
/// after its headers, a stream ends with an error frame and <c>[DONE]</c> so clients stop cleanly; any other body
/// fails the copy, and YARP cuts the client's response so that it cannot be taken as whole.
/// </summary>
public sealed class EngineResponseBody : AsyncReadStream
{
    private const int FirstReadBufferSize = 4 * 1024;
    private static readonly byte[] KeepAlive = ": keep-alive\n\n"u8.ToArray();

    private readonly Stream _engine;
    private readonly bool _streaming;
    private readonly ForwardingOptions _options;
    private readonly RouterMetrics _metrics;
    private readonly CancellationToken _clientAborted;
    private readonly bool _errorFrame;
    private readonly IDisposable? _owner;
    private CancellationTokenSource _silence;
    private Task<int>? _firstRead;
    private byte[]? _firstBuffer;
    private ReadOnlyMemory<byte> _pending;
    private bool _ended;

    /// <param name="errorFrame">
    /// When a stream's engine fails: end the body with the error frame (true), or just end it with <see cref="Failure"/> set,
    /// for a <see cref="Migration.MigratingResponseBody"/> to continue the stream elsewhere (false).
    /// </param>
    /// <param name="owner">Disposed with the body (a continuation's response message).</param>
    public EngineResponseBody(Stream engine, bool streaming, ForwardingOptions options, RouterMetrics metrics, CancellationToken clientAborted,
        bool errorFrame = true, IDisposable? owner = null)
    {
        _errorFrame = errorFrame;
        _owner = owner;
        _engine = engine;
        _streaming = streaming;
        _options = options;
        _metrics = metrics;
        _clientAborted = clientAborted;
        _silence = CancellationTokenSource.CreateLinkedTokenSource(clientAborted);
    }

    /// <summary>Timestamp (<see cref="Stopwatch"/>) of the first body byte; 0 if none came.</summary>
    public long FirstByte { get; private set; }

    public long LastByte { get; private set; }

    /// <summary>Reads that brought engine bytes (SSE keep-alive comments are not the engine's).</summary>
    public int Chunks { get; private set; }

    public EngineFailureKind? Failure { get; private set; }

    public string? FailureDetail { get; private set; }

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (!_pending.IsEmpty)
        {
            return Emit(_pending, destination);
        }
        if (_ended || destination.IsEmpty)
        {
            // YARP first asks for zero bytes to wait for data without holding a buffer; the timed read below does the waiting.
            return 0;
        }
        var waitingForFirst = FirstByte == 0;
        int read;
        try
        {
            if (waitingForFirst && _streaming && _options.KeepAliveInterval > 0)
            {
                // The first read may outlive this call (a keep-alive comment is returned meanwhile), so it gets its own buffer.
                if (_firstRead is null)
                {
                    _firstBuffer = new byte[FirstReadBufferSize];
                    _firstRead = _engine.ReadAsync(_firstBuffer, ArmSilence(_options.FirstByteTimeout)).AsTask();
                }
                try
                {
                    read = await _firstRead.WaitAsync(TimeSpan.FromSeconds(_options.KeepAliveInterval), _clientAborted).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    _metrics.KeepAliveSent();
                    return Emit(KeepAlive, destination);
                }
                _firstRead = null;
                DisarmSilence();
                return Received(_firstBuffer.AsMemory(0, read), destination);
            }
            read = await _engine.ReadAsync(destination, ArmSilence(waitingForFirst ? _options.FirstByteTimeout : _options.IdleTimeout)).ConfigureAwait(false);
            DisarmSilence();
        }
        catch (Exception e) when (!_clientAborted.IsCancellationRequested && e is IOException or HttpRequestException or OperationCanceledException)
        {
            _firstRead = null;
            (Failure, FailureDetail) = e is OperationCanceledException
                ? waitingForFirst
                    ? (EngineFailureKind.FirstByteTimeout, $"no body byte within {_options.FirstByteTimeout} s of the headers")
                    : (EngineFailureKind.IdleTimeout, $"no body byte for {_options.IdleTimeout} s")
                : (EngineFailureKind.ResetMidResponse, e.Message);
            if (!_streaming)
            {
                throw new IOException($"The engine failed while sending the response: {FailureDetail}", e);
            }
            _ended = true;
            return _errorFrame ? Emit(ErrorFrame(FailureDetail), destination) : 0;
        }
        return Counted(read);
    }

    private int Received(ReadOnlyMemory<byte> bytes, Memory<byte> destination)
    {
        Counted(bytes.Length);
        return bytes.IsEmpty ? 0 : Emit(bytes, destination);
    }

    private int Counted(int read)
    {
        if (read == 0)
        {
            _ended = true;
            return 0;
        }
        LastByte = Stopwatch.GetTimestamp();
        if (FirstByte == 0)
        {
            FirstByte = LastByte;
        }
        Chunks++;
        return read;
    }

    private int Emit(ReadOnlyMemory<byte> bytes, Memory<byte> destination)
    {
        var count = Math.Min(bytes.Length, destination.Length);
        bytes[..count].CopyTo(destination);
        _pending = bytes[count..];
        return count;
    }

    /// <summary>The engine's silence is timed while reading only: a slow client taking the writes is not the engine's.</summary>
    private CancellationToken ArmSilence(double seconds)
    {
        if (!_silence.TryReset())
        {
            // The timer fired after the last read had completed (while a slow client took the write): that silence was
            // the client's, not the engine's, so this read gets a fresh timer.
            _silence.Dispose();
            _silence = CancellationTokenSource.CreateLinkedTokenSource(_clientAborted);
        }
        _silence.CancelAfter(TimeSpan.FromSeconds(seconds));
        return _silence.Token;
    }

    private void DisarmSilence() => _silence.CancelAfter(Timeout.InfiniteTimeSpan);

    internal static byte[] ErrorFrame(string reason)
    {
        var error = ErrorResponses.Body(502, $"The engine failed while streaming the response: {reason}");
        return [.. "data: "u8, .. error, .. "\n\ndata: [DONE]\n\n"u8];
    }

    /// <summary>How the relay ended, once YARP is done with the body.</summary>
    public RelayResult Result(bool clientLeft) => new(clientLeft, Failure, FailureDetail, FirstByte, LastByte, Chunks);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _engine.Dispose();
            _silence.Dispose();
            _owner?.Dispose();
        }
        base.Dispose(disposing);
    }

    protected override string BodyName => "The engine's body";
}

/// <summary>The engine's response content with its body read through an <see cref="EngineResponseBody"/>.</summary>
/// With a <see cref="Migration.StreamContinuation"/>, the body is followed and may be continued at another engine.
internal sealed class EngineResponseContent(HttpContent engine, Func<Stream, EngineResponseBody> relay,
    Migration.StreamContinuation? continuation = null, RouterMetrics? metrics = null) : HttpContent
{
    public EngineResponseBody? Body { get; private set; }

    public Migration.MigratingResponseBody? Migrating { get; private set; }

    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken)
    {
        Body = relay(await engine.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        return continuation is null ? Body : Migrating = new Migration.MigratingResponseBody(Body, continuation, metrics!);
    }

    protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        throw new NotSupportedException("The engine's body is relayed as a stream.");

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            engine.Dispose();
        }
        base.Dispose(disposing);
    }
}
