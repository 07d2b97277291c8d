namespace VllmStack.CacheServer.Index;

/// <summary>How many leading tokens of a prompt one engine holds in its own KV cache.</summary>
public sealed record EngineMatch(string Engine, int Tokens);

/// <summary>
/// Which engine holds which KV block, from the engines' own stored/evicted events. Lookups walk a prompt's block
/// chain and report, per engine, how many leading blocks it holds. Engines that stop reporting expire with all
/// their entries; a hard cap bounds memory whatever engines send.
/// </summary>
public sealed class KvIndex(int maxEntries, TimeSpan engineTtl, TimeProvider? clock = null)
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly Lock _lock = new();
    private readonly Dictionary<ulong, List<int>> _holders = [];
    private readonly Dictionary<string, EngineEntry> _engines = new(StringComparer.Ordinal);
    private readonly Dictionary<int, EngineEntry> _byId = [];
    private int _entries;
    private int _nextId;

    private sealed class EngineEntry(int id, string name)
    {
        public int Id { get; } = id;

        public string Name { get; } = name;

        public HashSet<ulong> Blocks { get; } = [];

        public DateTimeOffset LastSeen { get; set; }
    }

    public int Entries
    {
        get
        {
            lock (_lock)
            {
                return _entries;
            }
        }
    }

    public long DroppedForCapacity { get; private set; }

    public IReadOnlyList<(string Engine, int Blocks, DateTimeOffset LastSeen)> Engines()
    {
        lock (_lock)
        {
            return [.. _engines.Values.OrderBy(e => e.Name, StringComparer.Ordinal).Select(e => (e.Name, e.Blocks.Count, e.LastSeen))];
        }
    }

    /// <summary>
    /// Applies one engine's report; also counts as its heartbeat. A <paramref name="full"/> report replaces everything known
    /// of the engine. Returns false when the engine was unknown and the report was only a delta: it should send a full one.
    /// </summary>
    public bool Apply(string engine, IEnumerable<ulong> stored, IEnumerable<ulong> evicted, bool full = false)
    {
        lock (_lock)
        {
            var known = _engines.ContainsKey(engine);
            var entry = Touch(engine);
            if (full)
            {
                foreach (var hash in entry.Blocks)
                {
                    RemoveHolder(hash, entry.Id);
                }
                entry.Blocks.Clear();
            }
            foreach (var hash in evicted)
            {
                if (entry.Blocks.Remove(hash))
                {
                    RemoveHolder(hash, entry.Id);
                }
            }
            foreach (var hash in stored)
            {
                if (_entries >= maxEntries)
                {
                    DroppedForCapacity++;
                    continue;
                }
                if (entry.Blocks.Add(hash))
                {
                    if (!_holders.TryGetValue(hash, out var holders))
                    {
                        _holders[hash] = holders = new List<int>(2);
                    }
                    holders.Add(entry.Id);
                    _entries++;
                }
            }
            return known || full;
        }
    }

    public void Heartbeat(string engine)
    {
        lock (_lock)
        {
            Touch(engine);
        }
    }

    /// <summary>Per engine, the number of leading <paramref name="blocks"/> it holds (engines holding none are left out).</summary>
    public IReadOnlyList<(string Engine, int Blocks)> Match(IReadOnlyList<ulong> blocks)
    {
        lock (_lock)
        {
            ExpireLocked();
            var result = new List<(string, int)>();
            if (blocks.Count == 0 || !_holders.TryGetValue(blocks[0], out var first))
            {
                return result;
            }
            // Engines still matching after i blocks; each drops out at its first missing block.
            var alive = new List<int>(first);
            for (var i = 1; i <= blocks.Count && alive.Count > 0; i++)
            {
                var next = i < blocks.Count && _holders.TryGetValue(blocks[i], out var h) ? h : null;
                for (var k = alive.Count - 1; k >= 0; k--)
                {
                    if (next is null || !next.Contains(alive[k]))
                    {
                        result.Add((_byId[alive[k]].Name, i));
                        alive.RemoveAt(k);
                    }
                }
            }
            return result;
        }
    }

    /// <summary>Drops engines not heard from within the TTL, with every entry they had.</summary>
    public int Expire()
    {
        lock (_lock)
        {
            return ExpireLocked();
        }
    }

    private int ExpireLocked()
    {
        var cutoff = _clock.GetUtcNow() - engineTtl;
        var expired = _engines.Values.Where(e => e.LastSeen < cutoff).ToList();
        foreach (var entry in expired)
        {
            foreach (var hash in entry.Blocks)
            {
                RemoveHolder(hash, entry.Id);
            }
            _engines.Remove(entry.Name);
            _byId.Remove(entry.Id);
        }
        return expired.Count;
    }

    private EngineEntry Touch(string engine)
    {
        if (!_engines.TryGetValue(engine, out var entry))
        {
            entry = new EngineEntry(++_nextId, engine);
            _engines[engine] = entry;
            _byId[entry.Id] = entry;
        }
        entry.LastSeen = _clock.GetUtcNow();
        return entry;
    }

    private void RemoveHolder(ulong hash, int engineId)
    {
        if (_holders.TryGetValue(hash, out var holders) && holders.Remove(engineId))
        {
            _entries--;
            if (holders.Count == 0)
            {
                _holders.Remove(hash);
            }
        }
    }
}
