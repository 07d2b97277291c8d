using VllmStack.Router.Engines;

namespace VllmStack.Router.Routing;

/// <summary>
/// Sticks each session to one engine through a consistent-hash ring, so its KV cache is reused across turns;
/// requests without a session key go to the least-loaded engine.
/// </summary>
/// <remarks>
/// The ring is cached and shared lock-free by readers. It covers every engine seen (reset by
/// <see cref="OnEnginesChanged"/>) and a lookup skips owners that are not candidates, which equals a ring over
/// the candidates alone; so it is rebuilt only when a candidate is missing from it, not whenever per-model
/// candidate lists or retries present a different subset.
/// </remarks>
public sealed class SessionPolicy : IRoutingPolicy
{
    private readonly int _virtualNodes;
    private readonly LeastLoadPolicy _fallback;
    private readonly Lock _rebuildLock = new();
    private volatile ConsistentHashRing? _ring;

    public SessionPolicy(SessionRoutingOptions options, LeastLoadPolicy? fallback = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.VirtualNodes, 1, nameof(options.VirtualNodes));
        _virtualNodes = options.VirtualNodes;
        _fallback = fallback ?? new LeastLoadPolicy();
    }

    public string Name => RoutingPolicyNames.Session;

    /// <summary>The ring currently cached (null before the first keyed request or engine list).</summary>
    public ConsistentHashRing? CurrentRing => _ring;

    public ValueTask<Engine> ChooseAsync(RoutingRequest request, IReadOnlyList<Engine> candidates, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Choose(request, candidates));

    public Engine Choose(RoutingRequest request, IReadOnlyList<Engine> candidates)
    {
        if (string.IsNullOrEmpty(request.SessionKey))
        {
            return _fallback.Choose(candidates);
        }
        var ring = RingCovering(candidates);
        return ring.Lookup(ConsistentHashRing.HashKey(request.SessionKey), candidates)
            ?? throw new InvalidOperationException("The ring does not cover the candidates it was built for.");
    }

    public void OnEnginesChanged(IReadOnlyCollection<Engine> engines)
    {
        lock (_rebuildLock)
        {
            // Drops departed engines, so lookups need not skip their points forever.
            _ring = engines.Count == 0 ? null : new ConsistentHashRing(engines, _virtualNodes);
        }
    }

    private ConsistentHashRing RingCovering(IReadOnlyList<Engine> candidates)
    {
        var ring = _ring;
        if (ring is not null && CoversAll(ring, candidates))
        {
            return ring;
        }
        lock (_rebuildLock)
        {
            ring = _ring;
            if (ring is not null && CoversAll(ring, candidates))
            {
                return ring;
            }
            var members = new Dictionary<int, Engine>();
            if (ring is not null)
            {
                foreach (var engine in ring.Engines)
                {
                    members[engine.Id] = engine;
                }
            }
            foreach (var engine in candidates)
            {
                // A candidate replaces a stale instance that had the same Id.
                members[engine.Id] = engine;
            }
            ring = new ConsistentHashRing(members.Values, _virtualNodes);
            _ring = ring;
            return ring;
        }
    }

    private static bool CoversAll(ConsistentHashRing ring, IReadOnlyList<Engine> candidates)
    {
        for (var i = 0; i < candidates.Count; i++)
        {
            if (!ring.Contains(candidates[i]))
            {
                return false;
            }
        }
        return true;
    }
}
