using VllmStack.Router.Engines;

namespace VllmStack.Router.Admission;

/// <summary>
/// How many more requests one engine can take before it is saturated. Its batch size is learnt from its metrics: the
/// running count of a scrape that also shows requests waiting is what the engine can run at once (its
/// <c>max-num-seqs</c>); a later scrape that shows more running raises it. It is never lowered (a KV cache that bounds
/// the batch lower shows as requests waiting in the engine, at most the waiting allowance more). Between
/// scrapes, the router's own in-flight count is the fast signal; what the engine reported beyond the router's requests
/// (other routers, direct clients) is taken off the room.
/// </summary>
public sealed class EngineCapacity
{
    private DateTimeOffset _seen = DateTimeOffset.MinValue;

    /// <summary>Requests the engine was seen running at once while others waited; null until it has been seen saturated.</summary>
    public double? Batch { get; private set; }

    /// <summary>Learns from a scrape not seen before.</summary>
    public void Observe(EngineLoad load)
    {
        if (load.ScrapedAt <= _seen)
        {
            return;
        }
        _seen = load.ScrapedAt;
        // Only ever raised: a scrape often catches requests that arrived since the scheduler's last step still waiting
        // beside a batch that is not full, which would read as a smaller batch and cut the engine's share for nothing.
        if ((load.Waiting > 0 || Batch is not null) && load.Running > (Batch ?? 0))
        {
            Batch = load.Running;
        }
    }

    /// <summary>Requests the engine can still take (may be negative when over); <see cref="double.PositiveInfinity"/> while its limit is unknown.</summary>
    public double Room(Engine engine, AdmissionOptions options)
    {
        var load = engine.Load;
        Observe(load);
        var limit = options.MaxInFlightPerEngine > 0 ? options.MaxInFlightPerEngine
            : Batch is { } batch ? batch + options.MaxWaitingPerEngine
            : double.PositiveInfinity;
        var external = Math.Max(0, load.Running + load.Waiting - load.RouterInFlightAtScrape);
        return limit - external - engine.InFlight;
    }
}
