using VllmStack.Router.Routing;

namespace VllmStack.Tests.Router;

public sealed class PrefixIndexTests
{
    [Fact]
    public void Chunk_hashes_are_chained_whole_chunks_seeded_by_the_model()
    {
        var prompt = new string('a', 100) + new string('b', 100) + "tail";
        var hashes = PrefixIndex.HashChunks("m", prompt, 100);
        Assert.Equal(2, hashes.Length);
        Assert.Equal(hashes, PrefixIndex.HashChunks("m", prompt, 100));
        // An extension keeps the leading hashes; a different model or earlier text changes all of them.
        Assert.Equal(hashes, PrefixIndex.HashChunks("m", prompt + new string('c', 150), 100)[..2]);
        Assert.DoesNotContain(PrefixIndex.HashChunks("other", prompt, 100), hash => Array.IndexOf(hashes, hash) >= 0);
        var changedFirst = PrefixIndex.HashChunks("m", "x" + prompt[1..], 100);
        Assert.NotEqual(hashes[1], changedFirst[1]);
        Assert.Empty(PrefixIndex.HashChunks("m", new string('a', 99), 100));
    }

    [Fact]
    public void Longest_match_prefers_the_candidate_holding_the_deepest_prefix()
    {
        var index = new PrefixIndex(1024);
        var hashes = Chain(1, 6);
        index.Record(hashes[..2], engineId: 10);
        index.Record(hashes[..4], engineId: 20);

        Assert.Equal(new PrefixMatch(20, 4), index.LongestMatch(hashes, [10, 20, 30]));
        // Engine 20 is not a candidate (say, a retry): the next best holder.
        Assert.Equal(new PrefixMatch(10, 2), index.LongestMatch(hashes, [10, 30]));
        Assert.Equal(PrefixMatch.None, index.LongestMatch(hashes, [30]));
        Assert.Equal(PrefixMatch.None, index.LongestMatch(Chain(2, 3), [10, 20]));
    }

    [Fact]
    public void Longest_match_reports_every_candidate_holding_the_matched_prefix()
    {
        var index = new PrefixIndex(1024);
        var hashes = Chain(1, 3);
        index.Record(hashes, 1);
        index.Record(hashes, 3);
        index.Record(hashes[..1], 2);

        var holds = new bool[4];
        Assert.Equal(3, index.LongestMatch(hashes, [0, 1, 2, 3], holds));
        Assert.Equal(new[] { false, true, false, true }, holds);
    }

    [Fact]
    public void Least_recently_used_entries_are_evicted_at_capacity()
    {
        var index = new PrefixIndex(4);
        var a = Chain(1, 2);
        var b = Chain(2, 2);
        var c = Chain(3, 2);
        index.Record(a, 1);
        index.Record(b, 1);
        index.Record(a, 1); // a is now the most recent
        index.Record(c, 1);

        Assert.Equal(4, index.Count);
        Assert.Equal(2, index.LongestMatch(a, [1]).MatchedChunks);
        Assert.Equal(2, index.LongestMatch(c, [1]).MatchedChunks);
        Assert.False(index.LongestMatch(b, [1]).Found);
    }

    [Fact]
    public void Eviction_trims_a_prefix_from_its_tail_so_its_head_still_matches()
    {
        var index = new PrefixIndex(5);
        var a = Chain(1, 4);
        index.Record(a, 1);
        index.Record(Chain(2, 2), 1); // needs one slot beyond capacity: a's deepest chunk goes

        Assert.Equal(5, index.Count);
        Assert.Equal(3, index.LongestMatch(a, [1]).MatchedChunks);
    }

    [Fact]
    public void Removing_an_engine_drops_it_everywhere_and_frees_entries_only_it_held()
    {
        var index = new PrefixIndex(1024);
        var shared = Chain(1, 2);
        var own = Chain(2, 3);
        index.Record(shared, 1);
        index.Record(shared, 2);
        index.Record(own, 2);
        Assert.Equal(5, index.Count);

        Assert.True(index.Remove(2));
        Assert.False(index.Remove(2));
        Assert.Equal(2, index.Count);
        Assert.Equal(new[] { 1 }, index.GetEngineIds());
        Assert.False(index.LongestMatch(own, [2]).Found);
        Assert.False(index.LongestMatch(shared, [2]).Found);
        Assert.Equal(new PrefixMatch(1, 2), index.LongestMatch(shared, [1, 2]));

        // Freed slots and the engine's bit are reused.
        index.Record(Chain(3, 3), 7);
        Assert.Equal(5, index.Count);
        Assert.Equal(new PrefixMatch(7, 3), index.LongestMatch(Chain(3, 3), [1, 7]));
    }

    [Fact]
    public void More_than_64_engines_are_tracked_exactly()
    {
        var index = new PrefixIndex(1024);
        var shared = Chain(0, 1);
        for (var engine = 0; engine < 150; engine++)
        {
            index.Record(Chain(engine + 1, 2), engine);
        }
        index.Record(shared, 3);
        index.Record(shared, 140);

        for (var engine = 0; engine < 150; engine++)
        {
            Assert.Equal(new PrefixMatch(engine, 2), index.LongestMatch(Chain(engine + 1, 2), [engine, (engine + 1) % 150]));
        }
        var holds = new bool[150];
        index.LongestMatch(shared, [.. Enumerable.Range(0, 150)], holds);
        Assert.Equal(new[] { 3, 140 }, Enumerable.Range(0, 150).Where(i => holds[i]));
        Assert.Equal(150, index.EngineCount);
    }

    [Fact]
    public void Estimated_memory_is_fixed_by_capacity()
    {
        var index = new PrefixIndex(10_000);
        var empty = index.EstimatedBytes;
        for (var i = 0; i < 30_000; i++)
        {
            index.Record(Chain(i, 1), i % 4);
        }
        Assert.Equal(10_000, index.Count);
        Assert.Equal(empty, index.EstimatedBytes);
        Assert.InRange(empty, 10_000 * 40, 10_000 * 80);
    }

    /// <summary>Stand-in chunk hashes: distinct per seed and position.</summary>
    private static ulong[] Chain(int seed, int length) =>
        [.. Enumerable.Range(0, length).Select(i => ((ulong)seed << 32) | (uint)(i + 1))];
}
