namespace VllmStack.Router.Discovery;

/// <summary>Exponential back-off with jitter, so that many routers do not reconnect in lockstep after an API server restart.</summary>
internal sealed class ReconnectBackoff
{
    private readonly TimeSpan _initial;
    private readonly TimeSpan _max;
    private TimeSpan _next;

    public ReconnectBackoff(TimeSpan initial, TimeSpan max)
    {
        _initial = initial;
        _max = max;
        _next = initial;
    }

    public TimeSpan NextDelay()
    {
        var delay = _next * (0.8 + (Random.Shared.NextDouble() * 0.4));
        _next = _next * 2 < _max ? _next * 2 : _max;
        return delay < _max ? delay : _max;
    }

    public void Reset() => _next = _initial;
}
