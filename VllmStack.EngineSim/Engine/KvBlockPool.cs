using VllmStack.ServiceDefaults.Collections;

namespace VllmStack.EngineSim.Engine;

/// <summary>
/// The KV cache: <c>--num-gpu-blocks</c> blocks of <c>--block-size</c> tokens. A block that holds a full,
/// computed run of tokens is keyed by its chained hash, so a later sequence with the same prefix reuses it.
/// Unreferenced blocks wait in a free queue in least-recently-used order; allocation takes the oldest and
/// evicts its cached content. Not thread-safe: <see cref="Scheduler"/> serialises access.
/// </summary>
public sealed class KvBlockPool
{
    private readonly int[] _refCount;
    private readonly ulong[] _hash;
    private readonly bool[] _hashed;
    private readonly IndexedLinkedList _free;
    private readonly Dictionary<ulong, int> _cached = [];

    public KvBlockPool(int numBlocks, int blockSize, bool enablePrefixCaching)
    {
        NumBlocks = numBlocks;
        BlockSize = blockSize;
        PrefixCachingEnabled = enablePrefixCaching;
        _refCount = new int[numBlocks];
        _hash = new ulong[numBlocks];
        _hashed = new bool[numBlocks];
        _free = new IndexedLinkedList(numBlocks);
        for (var i = 0; i < numBlocks; i++)
        {
            _free.AddLast(i);
        }
    }

    public int NumBlocks { get; }

    public int BlockSize { get; }

    public bool PrefixCachingEnabled { get; }

    /// <summary>Blocks no sequence references (cached ones included: they can be evicted at any time).</summary>
    public int FreeBlocks => _free.Count;

    public int UsedBlocks => NumBlocks - FreeBlocks;

    /// <summary>Fraction of blocks referenced by sequences, as vLLM's <c>kv_cache_usage_perc</c>.</summary>
    public double Usage => NumBlocks == 0 ? 0 : UsedBlocks / (double)NumBlocks;

    public int CachedBlocks => _cached.Count;

    public long Evictions { get; private set; }

    /// <summary>Raised when a full block's content becomes reusable, and when it is evicted (for KV events).</summary>
    public event Action<ulong>? BlockStored;

    public event Action<ulong>? BlockEvicted;

    /// <summary>Every block hash the cache holds now (for a full report to the cache server).</summary>
    public ulong[] CachedHashes() => [.. _cached.Keys];

    /// <summary>How many of the leading <paramref name="blockHashes"/> are in the cache.</summary>
    public int CountCachedPrefix(ReadOnlySpan<ulong> blockHashes)
    {
        if (!PrefixCachingEnabled)
        {
            return 0;
        }
        var hits = 0;
        while (hits < blockHashes.Length && _cached.ContainsKey(blockHashes[hits]))
        {
            hits++;
        }
        return hits;
    }

    /// <summary>
    /// Gives a sequence <paramref name="totalBlocks"/> blocks: the cached ones for its leading
    /// <paramref name="prefixHashes"/>, fresh ones for the rest. All or nothing.
    /// </summary>
    public bool TryAllocate(ReadOnlySpan<ulong> prefixHashes, int totalBlocks, List<int> blocks, out int cachedBlocks)
    {
        cachedBlocks = Math.Min(CountCachedPrefix(prefixHashes), totalBlocks);
        var reusedFromFreeQueue = 0;
        for (var i = 0; i < cachedBlocks; i++)
        {
            if (_refCount[_cached[prefixHashes[i]]] == 0)
            {
                reusedFromFreeQueue++;
            }
        }
        var fresh = totalBlocks - cachedBlocks;
        if (fresh > FreeBlocks - reusedFromFreeQueue)
        {
            cachedBlocks = 0;
            return false;
        }
        for (var i = 0; i < cachedBlocks; i++)
        {
            var block = _cached[prefixHashes[i]];
            if (_refCount[block]++ == 0)
            {
                _free.Remove(block);
            }
            blocks.Add(block);
        }
        for (var i = 0; i < fresh; i++)
        {
            blocks.Add(TakeFree());
        }
        return true;
    }

    /// <summary>One more block for a growing sequence; false when every block is referenced.</summary>
    public bool TryAllocateOne(out int block)
    {
        if (FreeBlocks == 0)
        {
            block = IndexedLinkedList.None;
            return false;
        }
        block = TakeFree();
        return true;
    }

    /// <summary>Marks a block as holding the full, computed content with this chained hash.</summary>
    public void Register(int block, ulong hash)
    {
        if (!PrefixCachingEnabled || _hashed[block])
        {
            return;
        }
        // Two sequences may compute the same content at once; the first copy stays the cached one.
        if (_cached.TryAdd(hash, block))
        {
            _hash[block] = hash;
            _hashed[block] = true;
            BlockStored?.Invoke(hash);
        }
    }

    /// <summary>Drops a sequence's references, last block first, so that its tail is evicted before its prefix.</summary>
    public void Free(List<int> blocks)
    {
        for (var i = blocks.Count - 1; i >= 0; i--)
        {
            var block = blocks[i];
            if (--_refCount[block] == 0)
            {
                _free.AddLast(block);
            }
        }
        blocks.Clear();
    }

    /// <summary>Forgets every cached block that no sequence uses (sleep, reset_prefix_cache).</summary>
    public int ResetPrefixCache()
    {
        var dropped = 0;
        for (var block = _free.First; block != IndexedLinkedList.None; block = _free.Next(block))
        {
            if (_hashed[block])
            {
                Evict(block);
                dropped++;
            }
        }
        return dropped;
    }

    private int TakeFree()
    {
        var block = _free.First;
        _free.Remove(block);
        if (_hashed[block])
        {
            Evict(block);
        }
        _refCount[block] = 1;
        return block;
    }

    private void Evict(int block)
    {
        _cached.Remove(_hash[block]);
        _hashed[block] = false;
        Evictions++;
        BlockEvicted?.Invoke(_hash[block]);
    }
}
