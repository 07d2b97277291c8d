using System.Buffers;
using System.Diagnostics;
using VllmStack.Router.Health;
using VllmStack.Router.Stats;

namespace VllmStack.Router.Forwarding.Migration;

/// <summary>
/// The client's side of a stream that may be migrated: the first engine's events (whole events, unchanged, followed
/// by an <see cref="SseFollower"/>), and when that engine fails mid-stream (reset, abort, idle timeout) the events of a
/// continuation at another engine, rewritten into the same stream — as many times as
/// <see cref="StreamContinuation.MaxMigrations"/> allows. When the stream cannot be continued (not continuable, no
/// engine, limit reached) it ends as an unmigrated one does: an error frame and <c>[DONE]</c>. A client that leaves is
/// never migrated: the read fails with the client's cancellation, as without migration.
/// </summary>
public sealed class MigratingResponseBody : AsyncReadStream
{
    private readonly StreamContinuation _continuation;
    private readonly RouterMetrics _metrics;
    private readonly SseFollower _follower = new();
    private readonly ArrayBufferWriter<byte> _out = new(16 * 1024);
    private readonly byte[] _buffer = new byte[16 * 1024];
    private EngineResponseBody _engine;
    private int _outRead;
    private bool _ended;
    private long _failedAt;
    private string? _failedReason;

    public MigratingResponseBody(EngineResponseBody first, StreamContinuation continuation, RouterMetrics metrics)
    {
        First = _engine = first;
        _continuation = continuation;
        _metrics = metrics;
    }

    /// <summary>The first engine's body (its timings are the request's).</summary>
    public EngineResponseBody First { get; }

    /// <summary>Continuations opened for this stream.</summary>
    public int Migrations { get; private set; }

    /// <summary>The stream ended with the router's error frame: an engine failed and the stream could not be continued.</summary>
    public bool EndedInError { get; private set; }

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            if (_outRead < _out.WrittenCount)
            {
                var count = Math.Min(destination.Length, _out.WrittenCount - _outRead);
                _out.WrittenMemory.Slice(_outRead, count).CopyTo(destination);
                _outRead += count;
                if (_outRead == _out.WrittenCount)
                {
                    _out.ResetWrittenCount();
                    _outRead = 0;
                }
                return count;
            }
            if (_ended || destination.IsEmpty)
            {
                return 0;
            }
            var read = await _engine.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
            if (read > 0)
            {
                _follower.Feed(_buffer.AsSpan(0, read), _out);
                if (_follower.EngineError is { } frame)
                {
                    _follower.ClearEngineError();
                    await MigrateAsync(EngineFailureKind.ResetMidResponse, $"the engine sent an error: {frame}", cancellationToken).ConfigureAwait(false);
                    continue;
                }
                if (_failedAt != 0 && _follower.ContinuationEvents > 0 && _out.WrittenCount > 0)
                {
                    // The continuation's first event is on its way to the client: that is the delay migration added.
                    _metrics.MigrationResumed(_failedReason!, Stopwatch.GetElapsedTime(_failedAt).TotalSeconds);
                    _failedAt = 0;
                }
                continue;
            }
            if (_engine.Failure is null)
            {
                if (!ReferenceEquals(_engine, First))
                {
                    _continuation.CurrentCompleted();
                }
                _ended = true;
                continue;
            }
            await MigrateAsync(_engine.Failure.Value, _engine.FailureDetail ?? _engine.Failure.Value.Reason(), cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task MigrateAsync(EngineFailureKind kind, string detail, CancellationToken cancellationToken)
    {
        var reason = kind.Reason();
        _continuation.CurrentFailed(kind, detail);
        _follower.DiscardPartial();
        if (_failedAt != 0)
        {
            // The previous continuation failed before any of its events reached the client.
            _metrics.Migration(_failedReason!, "failed");
            _failedAt = 0;
        }
        var detected = Stopwatch.GetTimestamp();
        if (_follower.Done)
        {
            _ended = true;
            return;
        }
        if (_follower.FinishReason is not null && (!_continuation.Assessment.IncludeUsage || _follower.UsageSeen))
        {
            // Nothing was left to generate: the stream only lacked its end.
            _metrics.Migration(reason, "finished");
            _out.Write("data: [DONE]\n\n"u8);
            _ended = true;
            return;
        }
        var refusal = _continuation.Assessment.NotContinuable ?? _follower.NotContinuable
            ?? (_follower.FinishReason is not null ? "usage lost" : null);
        if (refusal is not null)
        {
            EndWithError(detail, reason, "not_continuable");
            return;
        }
        if (Migrations >= _continuation.MaxMigrations)
        {
            EndWithError(detail, reason, "limit");
            return;
        }
        var body = ContinuationBuilder.Build(_continuation.OriginalBody.Span, _continuation.Route, _follower.DeliveredText, _follower.DeliveredTokens);
        if (body is null)
        {
            EndWithError(detail, reason, "not_continuable");
            return;
        }
        Migrations++;
        var next = await _continuation.OpenAsync(body, cancellationToken).ConfigureAwait(false);
        if (next is null)
        {
            EndWithError(detail, reason, "no_engine");
            return;
        }
        if (!ReferenceEquals(_engine, First))
        {
            _engine.Dispose();
        }
        _engine = next;
        _follower.BeginContinuation();
        _failedAt = detected;
        _failedReason = reason;
    }

    private void EndWithError(string detail, string reason, string outcome)
    {
        _metrics.Migration(reason, outcome);
        _out.Write(EngineResponseBody.ErrorFrame(detail));
        EndedInError = true;
        _ended = true;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            First.Dispose();
            if (!ReferenceEquals(_engine, First))
            {
                _engine.Dispose();
            }
        }
        base.Dispose(disposing);
    }

    protected override string BodyName => "The engine's body";
}
