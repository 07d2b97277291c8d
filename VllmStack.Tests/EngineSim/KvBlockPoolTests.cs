using VllmStack.EngineSim.Engine;

namespace VllmStack.Tests.EngineSim;

public sealed class KvBlockPoolTests
{
    [Fact]
    public void Cached_prefix_blocks_are_reused_and_counted()
    {
        var pool = new KvBlockPool(numBlocks: 8, blockSize: 4, enablePrefixCaching: true);
        var first = new List<int>();
        Assert.True(pool.TryAllocate([], 3, first, out var cached));
        Assert.Equal(0, cached);
        pool.Register(first[0], 100);
        pool.Register(first[1], 200);
        pool.Free(first);
        Assert.Equal(8, pool.FreeBlocks);
        Assert.Equal(2, pool.CachedBlocks);

        var second = new List<int>();
        Assert.True(pool.TryAllocate([100, 200, 300], 4, second, out cached));
        Assert.Equal(2, cached);
        Assert.Equal(4, pool.UsedBlocks);
        Assert.Equal(0.5, pool.Usage);
    }

    [Fact]
    public void Least_recently_freed_blocks_are_evicted_first_and_a_sequence_tail_before_its_head()
    {
        var pool = new KvBlockPool(numBlocks: 4, blockSize: 4, enablePrefixCaching: true);
        var a = new List<int>();
        pool.TryAllocate([], 2, a, out _);
        pool.Register(a[0], 1);
        pool.Register(a[1], 2);
        var b = new List<int>();
        pool.TryAllocate([], 2, b, out _);
        pool.Register(b[0], 3);
        pool.Register(b[1], 4);
        pool.Free(a);
        pool.Free(b);

        // One fresh block takes a's tail (hash 2): a was freed first, and its tail goes before its head.
        Assert.True(pool.TryAllocateOne(out _));
        Assert.Equal(1, pool.CountCachedPrefix([1]));
        Assert.Equal(0, pool.CountCachedPrefix([1, 2]) - 1);
        Assert.Equal(2, pool.CountCachedPrefix([3, 4]));
        Assert.Equal(1, pool.Evictions);
    }

    [Fact]
    public void Allocation_is_all_or_nothing_and_counts_cached_free_blocks_once()
    {
        var pool = new KvBlockPool(numBlocks: 4, blockSize: 4, enablePrefixCaching: true);
        var a = new List<int>();
        pool.TryAllocate([], 1, a, out _);
        pool.Register(a[0], 7);
        pool.Free(a);

        var b = new List<int>();
        Assert.False(pool.TryAllocate([7], 5, b, out _));
        Assert.Empty(b);
        Assert.Equal(4, pool.FreeBlocks);
        Assert.True(pool.TryAllocate([7], 4, b, out var cached));
        Assert.Equal(1, cached);
        Assert.Equal(0, pool.FreeBlocks);
    }

    [Fact]
    public void Disabled_prefix_caching_never_hits()
    {
        var pool = new KvBlockPool(numBlocks: 4, blockSize: 4, enablePrefixCaching: false);
        var a = new List<int>();
        pool.TryAllocate([], 1, a, out _);
        pool.Register(a[0], 7);
        pool.Free(a);
        Assert.Equal(0, pool.CountCachedPrefix([7]));
    }

    [Fact]
    public void Reset_drops_only_unreferenced_cached_blocks()
    {
        var pool = new KvBlockPool(numBlocks: 4, blockSize: 4, enablePrefixCaching: true);
        var held = new List<int>();
        pool.TryAllocate([], 1, held, out _);
        pool.Register(held[0], 1);
        var freed = new List<int>();
        pool.TryAllocate([], 1, freed, out _);
        pool.Register(freed[0], 2);
        pool.Free(freed);

        Assert.Equal(1, pool.ResetPrefixCache());
        Assert.Equal(1, pool.CountCachedPrefix([1]));
        Assert.Equal(0, pool.CountCachedPrefix([2]));
    }
}
