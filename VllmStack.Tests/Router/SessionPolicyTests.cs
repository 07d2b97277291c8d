using VllmStack.Router.Engines;
using VllmStack.Router.Routing;
using static VllmStack.Tests.Router.RoutingTestEngines;

namespace VllmStack.Tests.Router;

public sealed class SessionPolicyTests
{
    private const int Keys = 10_000;

    [Fact]
    public void Five_requests_of_one_session_land_on_one_engine_whatever_the_load()
    {
        var engines = Create(4);
        var policy = new SessionPolicy(new SessionRoutingOptions());
        var picks = new List<Engine>();
        for (var i = 0; i < 5; i++)
        {
            var pick = policy.Choose(Request(sessionKey: "user-42"), engines);
            pick.BeginRequest();
            pick.SetRunning(10 * (i + 1));
            picks.Add(pick);
        }
        Assert.Single(picks.Distinct());
    }

    [Fact]
    public void Requests_without_a_session_key_go_to_the_least_loaded_engine()
    {
        var engines = Create(4);
        engines[0].SetRunning(4);
        engines[1].SetRunning(3);
        engines[2].SetRunning(1);
        engines[3].SetRunning(6);
        var policy = new SessionPolicy(new SessionRoutingOptions());
        Assert.Same(engines[2], policy.Choose(Request(sessionKey: null), engines));
        Assert.Same(engines[2], policy.Choose(Request(sessionKey: ""), engines));
    }

    [Fact]
    public void Sessions_spread_evenly_over_the_engines()
    {
        var engines = Create(4);
        var owners = Assign(new SessionPolicy(new SessionRoutingOptions()), engines);
        Assert.All(engines, engine =>
        {
            var share = owners.Count(owner => owner == engine) / (double)Keys;
            Assert.InRange(share, 0.15, 0.35);
        });
    }

    [Fact]
    public void Adding_a_fifth_engine_moves_only_a_minority_of_sessions_all_to_the_new_engine()
    {
        var engines = Create(5);
        var policy = new SessionPolicy(new SessionRoutingOptions());
        var before = Assign(policy, engines[..4]);
        var after = Assign(policy, engines);

        var moved = Enumerable.Range(0, Keys).Where(i => before[i] != after[i]).ToList();
        Assert.InRange(moved.Count / (double)Keys, 0.10, 0.30);
        Assert.All(moved, i => Assert.Same(engines[4], after[i]));
    }

    [Fact]
    public void Removing_an_engine_moves_only_its_own_sessions()
    {
        var engines = Create(5);
        var policy = new SessionPolicy(new SessionRoutingOptions());
        var before = Assign(policy, engines);
        var removed = engines[2];
        var remaining = engines.Where(engine => engine != removed).ToArray();
        policy.OnEnginesChanged(remaining);
        var after = Assign(policy, remaining);

        for (var i = 0; i < Keys; i++)
        {
            if (before[i] == removed)
            {
                Assert.NotSame(removed, after[i]);
            }
            else
            {
                Assert.Same(before[i], after[i]);
            }
        }
        // The orphaned sessions spread over the survivors instead of piling onto one neighbour.
        var orphansBySurvivor = Enumerable.Range(0, Keys).Where(i => before[i] == removed).GroupBy(i => after[i]).ToList();
        Assert.True(orphansBySurvivor.Count >= 3, $"orphans went to only {orphansBySurvivor.Count} engines");
    }

    [Fact]
    public void A_ring_over_more_engines_answers_a_subset_exactly_like_a_ring_over_the_subset()
    {
        var engines = Create(6);
        var subset = new[] { engines[1], engines[3], engines[4] };
        var seenAll = new SessionPolicy(new SessionRoutingOptions());
        Assign(seenAll, engines);
        var ringBefore = seenAll.CurrentRing;

        Assert.Equal(Assign(new SessionPolicy(new SessionRoutingOptions()), subset), Assign(seenAll, subset));
        Assert.Same(ringBefore, seenAll.CurrentRing);
    }

    [Fact]
    public void The_ring_is_rebuilt_only_when_a_new_engine_appears()
    {
        var engines = Create(3);
        var policy = new SessionPolicy(new SessionRoutingOptions());
        policy.Choose(Request("a"), engines);
        var ring = policy.CurrentRing;
        policy.Choose(Request("b"), engines[..2]);
        policy.Choose(Request("c"), [.. Enumerable.Reverse(engines)]);
        Assert.Same(ring, policy.CurrentRing);

        var newcomer = NewEngine(9);
        policy.Choose(Request("d"), [.. engines, newcomer]);
        Assert.NotSame(ring, policy.CurrentRing);
        Assert.True(policy.CurrentRing!.Contains(newcomer));
        Assert.Equal(4 * 160, policy.CurrentRing.PointCount);
    }

    [Fact]
    public void Placement_depends_on_engine_urls_not_process_local_ids()
    {
        var first = new ConsistentHashRing(Create(4), 160);
        // Same URLs, other Ids and order: as after a router restart or on another router replica.
        var second = new ConsistentHashRing(Enumerable.Reverse(Create(4)).Select(e => new Engine(e.Id + 100, e.Url)), 160);
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(first.Lookup($"session-{i}").Url, second.Lookup($"session-{i}").Url);
        }
    }

    [Fact]
    public async Task Concurrent_requests_with_changing_candidate_sets_get_the_same_answers_as_fixed_rings()
    {
        var engines = Create(5);
        Engine[][] sets = [engines[..4], engines, engines[1..], [engines[0], engines[4]]];
        var expected = sets.Select(set => Assign(new SessionPolicy(new SessionRoutingOptions()), set, 500)).ToArray();
        var policy = new SessionPolicy(new SessionRoutingOptions());
        var mismatches = 0;

        await Parallel.ForAsync(0, 20_000, async (i, ct) =>
        {
            var set = i % sets.Length;
            var key = i / sets.Length % 500;
            var pick = await policy.ChooseAsync(Request($"session-{key}"), sets[set], ct);
            if (pick != expected[set][key])
            {
                Interlocked.Increment(ref mismatches);
            }
            if (i % 5000 == 0)
            {
                policy.OnEnginesChanged(engines);
            }
        });
        Assert.Equal(0, mismatches);
    }

    private static Engine[] Assign(SessionPolicy policy, IReadOnlyList<Engine> engines, int keys = Keys) =>
        [.. Enumerable.Range(0, keys).Select(i => policy.Choose(Request($"session-{i}"), engines))];
}
