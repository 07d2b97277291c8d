namespace VllmStack.Router.Forwarding;

/// <summary>
/// The engine's silences before its response headers, on one attempt: a request body it stops taking, and the wait for
/// its headers once the whole body has gone (an upload's time to headers starts only then: a slow client is not the
/// engine's delay). Its token cancels the attempt; <see cref="Detail"/> says which silence it was.
/// </summary>
/// <param name="responseHeaders">How long the engine may take to answer once it has the whole body (and until the body starts).</param>
/// <param name="bodyStall">How long the engine may take no request body once the body flows.</param>
public sealed class AttemptTimer(TimeSpan responseHeaders, TimeSpan bodyStall) : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly Lock _lock = new();
    private bool _stopped;
    private bool _waitingForBody;

    /// <summary>Cancelled when the engine has been silent too long.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>The silence that cancelled the attempt; null while the engine kept up. Written only when asked for.</summary>
    public string? Detail => !_source.IsCancellationRequested ? null
        : _waitingForBody ? $"the engine took no request body for {bodyStall.TotalSeconds:0.###} s"
        : $"no response headers within {responseHeaders.TotalSeconds:0.###} s";

    /// <summary>The engine owes its response headers (the body has gone, or has not started).</summary>
    public void AwaitResponseHeaders() => Arm(responseHeaders, waitingForBody: false);

    /// <summary>The engine is taking a chunk of the request body.</summary>
    public void AwaitBodyTaken() => Arm(bodyStall, waitingForBody: true);

    /// <summary>Cancels after <paramref name="silence"/> unless re-armed, disarmed or stopped first.</summary>
    private void Arm(TimeSpan silence, bool waitingForBody)
    {
        lock (_lock)
        {
            if (_stopped || _source.IsCancellationRequested)
            {
                return;
            }
            _waitingForBody = waitingForBody;
            _source.CancelAfter(silence);
        }
    }

    /// <summary>The router or the client is what is being waited for now, not the engine.</summary>
    public void Disarm()
    {
        lock (_lock)
        {
            if (!_stopped && !_source.IsCancellationRequested)
            {
                _source.CancelAfter(Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>The response headers came: no silence before them can fail the attempt any more.</summary>
    public void Stop()
    {
        lock (_lock)
        {
            _stopped = true;
            if (!_source.IsCancellationRequested)
            {
                _source.CancelAfter(Timeout.InfiniteTimeSpan);
            }
        }
    }

    public void Dispose() => _source.Dispose();
}
