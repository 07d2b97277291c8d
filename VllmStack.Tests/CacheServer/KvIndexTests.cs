using VllmStack.CacheServer.Index;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.Tests.CacheServer;

public sealed class KvIndexTests
{
    private static readonly ulong[] Chain = [11, 12, 13, 14, 15];

    [Fact]
    public void Each_engine_matches_its_leading_blocks_only()
    {
        var index = new KvIndex(1000, TimeSpan.FromSeconds(30));
        index.Apply("http://a", [11, 12, 13], [], full: true);
        index.Apply("http://b", [11, 12, 13, 14, 15], [], full: true);
        index.Apply("http://c", [12, 13], [], full: true);   // holds no leading block: no match

        var matches = index.Match(Chain).ToDictionary(m => m.Engine, m => m.Blocks);
        Assert.Equal(new Dictionary<string, int> { ["http://a"] = 3, ["http://b"] = 5 }, matches);
    }

    [Fact]
    public void Evictions_shorten_a_match_and_deltas_from_unknown_engines_ask_for_a_full_report()
    {
        var index = new KvIndex(1000, TimeSpan.FromSeconds(30));
        Assert.False(index.Apply("http://a", [11, 12, 13], []));
        Assert.True(index.Apply("http://a", [], [12]));
        Assert.Equal(1, Assert.Single(index.Match(Chain)).Blocks);
        Assert.Equal(2, index.Entries);

        Assert.True(index.Apply("http://a", [11, 12], [], full: true));
        Assert.Equal(2, index.Entries);
        Assert.Equal(2, Assert.Single(index.Match(Chain)).Blocks);
    }

    [Fact]
    public void Engines_that_stop_reporting_expire_with_their_entries()
    {
        var clock = new ManualClock(DateTimeOffset.UnixEpoch);
        var index = new KvIndex(1000, TimeSpan.FromSeconds(30), clock);
        index.Apply("http://a", [11, 12], [], full: true);
        index.Apply("http://b", [11], [], full: true);
        clock.Advance(TimeSpan.FromSeconds(20));
        index.Heartbeat("http://b");
        clock.Advance(TimeSpan.FromSeconds(15));

        Assert.Equal(1, index.Expire());
        Assert.Equal(("http://b", 1), Assert.Single(index.Match(Chain)));
        Assert.Equal(1, index.Entries);
    }

    [Fact]
    public void The_cap_bounds_entries_and_counts_what_it_drops()
    {
        var index = new KvIndex(3, TimeSpan.FromSeconds(30));
        index.Apply("http://a", [1, 2, 3, 4, 5], [], full: true);
        Assert.Equal(3, index.Entries);
        Assert.Equal(2, index.DroppedForCapacity);
    }

    [Fact]
    public void Block_chains_agree_with_the_engines_and_separate_models_and_adapters()
    {
        int[] tokens = [.. Enumerable.Range(100, 40)];
        var chain = KvBlockHashes.Compute(KvBlockHashes.Root("m"), tokens, 16);
        Assert.Equal(2, chain.Count);
        Assert.Equal(chain[0], KvBlockHashes.Block(KvBlockHashes.Root("m"), tokens.AsSpan(0, 16)));
        Assert.NotEqual(chain[0], KvBlockHashes.Compute(KvBlockHashes.Root("m", "adapter"), tokens, 16)[0]);
        Assert.NotEqual(chain[0], KvBlockHashes.Compute(KvBlockHashes.Root("other"), tokens, 16)[0]);
        Assert.True(KvBlockHashes.TryParse(KvBlockHashes.Format(chain[1]), out var parsed) && parsed == chain[1]);
    }
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}
