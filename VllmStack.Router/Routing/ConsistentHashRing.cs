using VllmStack.Router.Engines;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.Router.Routing;

/// <summary>
/// An immutable consistent-hash ring: each engine owns <c>virtualNodes</c> points, a key belongs to the first
/// point clockwise from its hash. Points derive from the engine's <see cref="Engine.Name"/> (its URL), not
/// its process-local Id, so every router replica and every restart maps a session to the same engine.
/// Adding or removing one engine of N moves only the keys on that engine's arcs, about 1/N of them.
/// </summary>
public sealed class ConsistentHashRing
{
    private readonly ulong[] _points;
    private readonly Engine[] _owners;
    private readonly Dictionary<int, Engine> _members;

    public ConsistentHashRing(IEnumerable<Engine> engines, int virtualNodes)
    {
        ArgumentNullException.ThrowIfNull(engines);
        ArgumentOutOfRangeException.ThrowIfLessThan(virtualNodes, 1);
        VirtualNodes = virtualNodes;

        _members = new Dictionary<int, Engine>();
        foreach (var engine in engines)
        {
            _members.TryAdd(engine.Id, engine);
        }

        var entries = new (ulong Point, Engine Owner)[_members.Count * virtualNodes];
        var n = 0;
        foreach (var engine in _members.Values)
        {
            for (var i = 0; i < virtualNodes; i++)
            {
                entries[n++] = (KvBlockHashes.Text($"{engine.Name}#{i}"), engine);
            }
        }
        // A full order (point, then name, then Id) so colliding points resolve the same way in every ring.
        Array.Sort(entries, static (a, b) =>
        {
            var byPoint = a.Point.CompareTo(b.Point);
            if (byPoint != 0)
            {
                return byPoint;
            }
            var byName = string.CompareOrdinal(a.Owner.Name, b.Owner.Name);
            return byName != 0 ? byName : a.Owner.Id.CompareTo(b.Owner.Id);
        });

        _points = new ulong[entries.Length];
        _owners = new Engine[entries.Length];
        for (var i = 0; i < entries.Length; i++)
        {
            _points[i] = entries[i].Point;
            _owners[i] = entries[i].Owner;
        }
    }

    public int VirtualNodes { get; }

    public int PointCount => _points.Length;

    public IReadOnlyCollection<Engine> Engines => _members.Values;

    /// <summary>Whether this very engine instance (not merely its Id, which may be reused) is on the ring.</summary>
    public bool Contains(Engine engine) => _members.TryGetValue(engine.Id, out var member) && ReferenceEquals(member, engine);

    public static ulong HashKey(string key) => KvBlockHashes.Text(key);

    public Engine Lookup(string key) => Lookup(HashKey(key));

    public Engine Lookup(ulong keyHash)
    {
        if (_points.Length == 0)
        {
            throw new InvalidOperationException("The ring has no engines.");
        }
        return _owners[FirstPointAtOrAfter(keyHash)];
    }

    /// <summary>
    /// The first owner clockwise from the key that is among <paramref name="eligible"/>, or null if none is on
    /// the ring. Skipping ineligible owners gives exactly the answer of a ring built over the eligible engines
    /// alone, so one ring serves every subset of its engines (per-model candidates, retries) without rebuilds.
    /// </summary>
    public Engine? Lookup(ulong keyHash, IReadOnlyList<Engine> eligible)
    {
        if (_points.Length == 0)
        {
            return null;
        }
        var start = FirstPointAtOrAfter(keyHash);
        for (var step = 0; step < _points.Length; step++)
        {
            var owner = _owners[(start + step) % _points.Length];
            if (IsAmong(owner, eligible))
            {
                return owner;
            }
        }
        return null;
    }

    private static bool IsAmong(Engine engine, IReadOnlyList<Engine> engines)
    {
        for (var i = 0; i < engines.Count; i++)
        {
            if (ReferenceEquals(engines[i], engine))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Lower bound by binary search, wrapping past the last point to the first.</summary>
    private int FirstPointAtOrAfter(ulong hash)
    {
        int low = 0, high = _points.Length;
        while (low < high)
        {
            var mid = low + ((high - low) >> 1);
            if (_points[mid] < hash)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }
        return low == _points.Length ? 0 : low;
    }
}
