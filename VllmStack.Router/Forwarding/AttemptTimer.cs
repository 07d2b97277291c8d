namespace VllmStack.Router.Forwarding;

/// <summary>
/// The engine's silences before its response headers, on one attempt: a request body it stops taking, and the wait for
/// its headers once the whole body has gone (an upload's time to headers starts only then: a slow client is not the
/// engine's delay). Its token cancels the attempt; <see cref="Detail"/> says which silence it was.
/// </summary>
public sealed class AttemptTimer : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly Lock _lock = new();
    private bool _stopped;

    /// <summary>Cancelled when the engine has been silent too long.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>The silence that cancelled the attempt; null while the engine kept up.</summary>
    public string? Detail => _source.IsCancellationRequested ? _armedFor : null;

    private string? _armedFor;

    /// <summary>Cancels after <paramref name="silence"/> unless re-armed, disarmed or stopped first.</summary>
    public void Arm(TimeSpan silence, string detail)
    {
        lock (_lock)
        {
            if (_stopped || _source.IsCancellationRequested)
            {
                return;
            }
            _armedFor = detail;
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
