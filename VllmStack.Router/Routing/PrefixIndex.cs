using VllmStack.ServiceDefaults.Collections;
using System.Runtime.InteropServices;
using System.IO.Hashing;

namespace VllmStack.Router.Routing;

/// <summary>The deepest prefix some candidate holds: how many chunks, and one engine holding them.</summary>
public readonly record struct PrefixMatch(int EngineId, int MatchedChunks)
{
    public static PrefixMatch None => new(-1, 0);

    public bool Found => MatchedChunks > 0;
}

/// <summary>
/// Which engines have recently seen which prompt prefixes, as chained chunk hashes. Bounded: at most
/// <see cref="Capacity"/> entries in arrays allocated up front, least recently used entries evicted first, so
/// memory does not grow with traffic (the unbounded trie of other routers is their most reported leak).
/// </summary>
/// <remarks>
/// Each entry holds a chunk hash, a bitmask of engine slots (one bit per engine known to the index, widened
/// by whole 64-bit words if more than 64 engines appear) and its LRU links. Hashes are chained, so an entry
/// stands for the whole prefix up to its chunk, and a lookup walks from the first chunk until the chain breaks.
/// All access takes one lock; the work under it is a few dictionary probes per chunk.
/// </remarks>
public sealed class PrefixIndex
{
    private const int None = -1;

    /// <summary>Approximate bytes per <c>Dictionary&lt;ulong, int&gt;</c> slot: a 24-byte entry and a 4-byte bucket.</summary>
    private const int DictionaryBytesPerSlot = 28;

    private readonly Lock _lock = new();
    private readonly ulong[] _hashes;
    private readonly IndexedLinkedList _lru;
    private readonly Stack<int> _freeSlots = new();
    private readonly Dictionary<ulong, int> _slotOfHash;
    private readonly Dictionary<int, int> _bitOfEngine = new(64); // one mask word's worth of engines
    private readonly Stack<int> _freeBits = new();
    private ulong[] _holders;
    private int _words = 1;
    private int _bitsHanded;
    private int _slotsHanded;

    public PrefixIndex(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Capacity = capacity;
        _hashes = new ulong[capacity];
        _lru = new IndexedLinkedList(capacity);
        _holders = new ulong[capacity];
        // Sized once so it never rehashes or grows: it never holds more than capacity keys.
        _slotOfHash = new Dictionary<ulong, int>(capacity);
    }

    public int Capacity { get; }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _slotOfHash.Count;
            }
        }
    }

    /// <summary>Engines holding at least one entry.</summary>
    public int EngineCount
    {
        get
        {
            lock (_lock)
            {
                return _bitOfEngine.Count;
            }
        }
    }

    /// <summary>Managed memory of the index: fixed by capacity (and the number of 64-engine words), not by traffic.</summary>
    public long EstimatedBytes
    {
        get
        {
            lock (_lock)
            {
                return (long)_hashes.Length * sizeof(ulong)
                    + _lru.Bytes
                    + (long)_freeSlots.EnsureCapacity(0) * sizeof(int)
                    + (long)_holders.Length * sizeof(ulong)
                    + (long)_slotOfHash.EnsureCapacity(0) * DictionaryBytesPerSlot
                    + (long)_bitOfEngine.EnsureCapacity(0) * DictionaryBytesPerSlot;
            }
        }
    }

    /// <summary>Number of whole chunks in a prompt; a trailing partial chunk is not indexed because the next turn of
    /// the conversation changes it, so it could only ever match an exact repeat.</summary>
    public static int ChunkCount(int promptLength, int chunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        return promptLength / chunkSize;
    }

    /// <summary>Chained chunk hashes of a prompt: chunk i's hash is seeded with chunk i-1's, the first with the model's.</summary>
    public static ulong[] HashChunks(string model, ReadOnlySpan<char> prompt, int chunkSize)
    {
        var hashes = new ulong[ChunkCount(prompt.Length, chunkSize)];
        HashChunks(model, prompt, chunkSize, hashes);
        return hashes;
    }

    /// <summary>Writes the chained hashes of the prompt's whole chunks to <paramref name="destination"/>; returns how many.</summary>
    /// <remarks>Chars are hashed as their UTF-16 bytes, avoiding a transcoding copy; the index lives in one process, so
    /// byte order never needs to agree across machines. The model seeds the chain so models never share entries.</remarks>
    public static int HashChunks(string model, ReadOnlySpan<char> prompt, int chunkSize, Span<ulong> destination)
    {
        ArgumentNullException.ThrowIfNull(model);
        var count = ChunkCount(prompt.Length, chunkSize);
        if (destination.Length < count)
        {
            throw new ArgumentException($"Room for {count} hashes is needed.", nameof(destination));
        }
        var hash = XxHash64.HashToUInt64(MemoryMarshal.AsBytes(model.AsSpan()));
        for (var i = 0; i < count; i++)
        {
            hash = XxHash64.HashToUInt64(MemoryMarshal.AsBytes(prompt.Slice(i * chunkSize, chunkSize)), unchecked((long)hash));
            destination[i] = hash;
        }
        return count;
    }

    /// <summary>The longest prefix of <paramref name="hashes"/> held by a candidate, and the first candidate holding it.</summary>
    public PrefixMatch LongestMatch(ReadOnlySpan<ulong> hashes, ReadOnlySpan<int> candidateIds)
    {
        Span<bool> holds = candidateIds.Length <= 256 ? stackalloc bool[candidateIds.Length] : new bool[candidateIds.Length];
        var matched = LongestMatch(hashes, candidateIds, holds);
        for (var i = 0; i < candidateIds.Length; i++)
        {
            if (holds[i])
            {
                return new PrefixMatch(candidateIds[i], matched);
            }
        }
        return PrefixMatch.None;
    }

    /// <summary>
    /// The number of leading chunks some candidate holds; <paramref name="holds"/>[i] tells whether
    /// <paramref name="candidateIds"/>[i] holds that whole prefix (so the caller can pick among holders by load).
    /// </summary>
    public int LongestMatch(ReadOnlySpan<ulong> hashes, ReadOnlySpan<int> candidateIds, Span<bool> holds)
    {
        if (holds.Length < candidateIds.Length)
        {
            throw new ArgumentException("One flag per candidate is needed.", nameof(holds));
        }
        holds.Clear();
        lock (_lock)
        {
            Span<ulong> wanted = _words <= 16 ? stackalloc ulong[_words] : new ulong[_words];
            var anyKnown = false;
            foreach (var id in candidateIds)
            {
                if (_bitOfEngine.TryGetValue(id, out var bit))
                {
                    wanted[bit >> 6] |= 1UL << (bit & 63);
                    anyKnown = true;
                }
            }
            if (!anyKnown)
            {
                return 0;
            }

            var matched = 0;
            var deepest = None;
            // An engine holding chunk i saw the whole prefix up to i, so the first chunk no candidate holds ends the match.
            while (matched < hashes.Length
                && _slotOfHash.TryGetValue(hashes[matched], out var slot)
                && HoldsAny(slot, wanted))
            {
                deepest = slot;
                matched++;
            }
            if (deepest == None)
            {
                return 0;
            }
            for (var i = 0; i < candidateIds.Length; i++)
            {
                holds[i] = _bitOfEngine.TryGetValue(candidateIds[i], out var bit) && HasBit(deepest, bit);
            }
            return matched;
        }
    }

    /// <summary>Notes that <paramref name="engineId"/> now holds every prefix in <paramref name="hashes"/>.</summary>
    public void Record(ReadOnlySpan<ulong> hashes, int engineId)
    {
        if (hashes.IsEmpty)
        {
            return;
        }
        lock (_lock)
        {
            var bit = BitFor(engineId);
            // Deepest chunk first, so the shared roots end up most recent and are evicted last: eviction trims
            // prefixes from their tails and never leaves a chain with its head missing while its tail survives.
            for (var i = hashes.Length - 1; i >= 0; i--)
            {
                var hash = hashes[i];
                if (_slotOfHash.TryGetValue(hash, out var slot))
                {
                    _lru.Remove(slot);
                }
                else
                {
                    slot = TakeSlot();
                    _hashes[slot] = hash;
                    _holders.AsSpan(slot * _words, _words).Clear();
                    _slotOfHash.Add(hash, slot);
                }
                _holders[slot * _words + (bit >> 6)] |= 1UL << (bit & 63);
                _lru.AddFirst(slot);
            }
        }
    }

    /// <summary>Forgets an engine: clears it from every entry, frees entries nobody else holds. False if unknown.</summary>
    public bool Remove(int engineId)
    {
        lock (_lock)
        {
            if (!_bitOfEngine.Remove(engineId, out var bit))
            {
                return false;
            }
            var word = bit >> 6;
            var mask = ~(1UL << (bit & 63));
            var slot = _lru.First;
            while (slot != IndexedLinkedList.None)
            {
                var following = _lru.Next(slot);
                _holders[slot * _words + word] &= mask;
                if (!HoldsAnyone(slot))
                {
                    _lru.Remove(slot);
                    _slotOfHash.Remove(_hashes[slot]);
                    _freeSlots.Push(slot);
                }
                slot = following;
            }
            _freeBits.Push(bit);
            return true;
        }
    }

    /// <summary>Ids of the engines the index knows, so a caller can remove those that departed.</summary>
    public int[] GetEngineIds()
    {
        lock (_lock)
        {
            return [.. _bitOfEngine.Keys];
        }
    }

    private int BitFor(int engineId)
    {
        if (_bitOfEngine.TryGetValue(engineId, out var bit))
        {
            return bit;
        }
        if (!_freeBits.TryPop(out bit))
        {
            if (_bitsHanded == _words * 64)
            {
                WidenHolders();
            }
            bit = _bitsHanded++;
        }
        _bitOfEngine.Add(engineId, bit);
        return bit;
    }

    /// <summary>More than 64 engines at once: one more mask word per entry. Bounded by the fleet, not by traffic.</summary>
    private void WidenHolders()
    {
        var words = _words + 1;
        var widened = new ulong[Capacity * words];
        for (var slot = 0; slot < _slotsHanded; slot++)
        {
            _holders.AsSpan(slot * _words, _words).CopyTo(widened.AsSpan(slot * words));
        }
        _holders = widened;
        _words = words;
    }

    private int TakeSlot()
    {
        if (_freeSlots.TryPop(out var free))
        {
            return free;
        }
        if (_slotsHanded < Capacity)
        {
            return _slotsHanded++;
        }
        var evicted = _lru.Last;
        _lru.Remove(evicted);
        _slotOfHash.Remove(_hashes[evicted]);
        return evicted;
    }

    private bool HoldsAny(int slot, ReadOnlySpan<ulong> wanted)
    {
        var holders = _holders.AsSpan(slot * _words, _words);
        for (var w = 0; w < holders.Length; w++)
        {
            if ((holders[w] & wanted[w]) != 0)
            {
                return true;
            }
        }
        return false;
    }

    private bool HoldsAnyone(int slot) => _holders.AsSpan(slot * _words, _words).IndexOfAnyExcept(0UL) >= 0;

    private bool HasBit(int slot, int bit) => (_holders[slot * _words + (bit >> 6)] & (1UL << (bit & 63))) != 0;
}
