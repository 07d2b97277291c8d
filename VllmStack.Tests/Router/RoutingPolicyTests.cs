using VllmStack.Router.Engines;
using VllmStack.Router.Routing;
using static VllmStack.Tests.Router.RoutingTestEngines;

namespace VllmStack.Tests.Router;

public sealed class RoutingPolicyTests
{
    [Fact]
    public void Round_robin_never_sends_two_consecutive_requests_to_the_same_engine_and_is_even()
    {
        var engines = Create(4);
        var policy = new RoundRobinPolicy();
        var picks = Enumerable.Range(0, 100).Select(_ => policy.Choose(engines)).ToList();

        AssertNoRepeats(picks);
        Assert.All(engines, engine => Assert.Equal(25, picks.Count(pick => pick == engine)));
    }

    [Fact]
    public void Round_robin_never_repeats_when_any_engine_is_removed_at_any_point()
    {
        for (var removeIndex = 0; removeIndex < 4; removeIndex++)
        {
            for (var removeAfter = 1; removeAfter <= 8; removeAfter++)
            {
                var engines = Create(4);
                var policy = new RoundRobinPolicy();
                var picks = Enumerable.Range(0, removeAfter).Select(_ => policy.Choose(engines)).ToList();
                var removed = engines[removeIndex];
                var remaining = engines.Where(engine => engine != removed).ToArray();
                var after = Enumerable.Range(0, 9).Select(_ => policy.Choose(remaining)).ToList();

                AssertNoRepeats([.. picks, .. after]);
                Assert.DoesNotContain(removed, after);
                Assert.All(remaining, engine => Assert.Equal(3, after.Count(pick => pick == engine)));
            }
        }
    }

    [Fact]
    public void Round_robin_never_repeats_when_the_candidate_list_is_reordered_or_narrowed_for_a_retry()
    {
        var engines = Create(3);
        var policy = new RoundRobinPolicy();
        var random = new Random(7);
        var previous = policy.Choose(engines);
        for (var i = 0; i < 200; i++)
        {
            // Half the time a shuffled full list, otherwise a retry list without the engine just tried.
            Engine[] candidates = i % 2 == 0
                ? [.. engines.OrderBy(_ => random.Next())]
                : [.. engines.Where(engine => engine != previous)];
            var pick = policy.Choose(candidates);
            Assert.NotSame(previous, pick);
            previous = pick;
        }
    }

    [Fact]
    public void Round_robin_with_one_candidate_returns_it()
    {
        var engine = NewEngine(3);
        var policy = new RoundRobinPolicy();
        Assert.Same(engine, policy.Choose([engine]));
        Assert.Same(engine, policy.Choose([engine]));
    }

    [Fact]
    public async Task Round_robin_stays_even_under_concurrent_callers()
    {
        var engines = Create(4);
        IRoutingPolicy policy = new RoundRobinPolicy();
        var counts = new int[4];
        await Parallel.ForAsync(0, 4000, async (_, ct) =>
        {
            var pick = await policy.ChooseAsync(Request(), engines, ct);
            Interlocked.Increment(ref counts[pick.Id]);
        });
        Assert.All(counts, count => Assert.Equal(1000, count));
    }

    [Fact]
    public void Least_load_picks_the_lowest_load_score()
    {
        var engines = Create(4);
        engines[0].SetRunning(5);
        engines[1].SetRunning(2);
        engines[2].SetRunning(7);
        engines[3].SetRunning(3);
        Assert.Same(engines[1], new LeastLoadPolicy().Choose(engines));
    }

    [Fact]
    public void Least_load_counts_only_load_beyond_the_routers_own_requests_at_scrape_time()
    {
        var engines = Create(2);
        // Engine 0 reported 6 running of which 6 were ours and have since finished; engine 1 has 2 from elsewhere.
        engines[0].SetLoad(new EngineLoad(6, 0, 0, 0, 6, DateTimeOffset.UtcNow));
        engines[1].SetLoad(new EngineLoad(2, 0, 0, 0, 0, DateTimeOffset.UtcNow));
        Assert.Same(engines[0], new LeastLoadPolicy().Choose(engines));
    }

    [Fact]
    public void Least_load_reacts_to_in_flight_requests_between_scrapes()
    {
        var engines = Create(4);
        var policy = new LeastLoadPolicy();
        for (var i = 0; i < 8; i++)
        {
            policy.Choose(engines).BeginRequest();
        }
        Assert.All(engines, engine => Assert.Equal(2, engine.InFlight));

        // A scrape says engine 2 is busy with other clients' work: the next requests avoid it.
        engines[2].SetRunning(10);
        for (var i = 0; i < 6; i++)
        {
            policy.Choose(engines).BeginRequest();
        }
        Assert.Equal(2, engines[2].InFlight);
        Assert.All(engines.Where(engine => engine != engines[2]), engine => Assert.Equal(4, engine.InFlight));

        // Finishing requests frees an engine again.
        engines[0].EndRequest();
        engines[0].EndRequest();
        Assert.Same(engines[0], policy.Choose(engines));
    }

    [Fact]
    public void Least_load_breaks_ties_by_kv_cache_usage()
    {
        var engines = Create(3);
        engines[0].SetRunning(1, kvCacheUsage: 0.7);
        engines[1].SetRunning(1, kvCacheUsage: 0.2);
        engines[2].SetRunning(1, kvCacheUsage: 0.5);
        var policy = new LeastLoadPolicy();
        Assert.All(Enumerable.Range(0, 5), _ => Assert.Same(engines[1], policy.Choose(engines)));
    }

    [Fact]
    public void Least_load_spreads_a_burst_chosen_before_any_in_flight_count_moves()
    {
        var engines = Create(4);
        var policy = new LeastLoadPolicy();
        var picks = Enumerable.Range(0, 8).Select(_ => policy.Choose(engines)).ToList();
        Assert.All(engines, engine => Assert.Equal(2, picks.Count(pick => pick == engine)));
    }

    [Theory]
    [InlineData("roundrobin", typeof(RoundRobinPolicy))]
    [InlineData("session", typeof(SessionPolicy))]
    [InlineData("leastload", typeof(LeastLoadPolicy))]
    [InlineData("prefixaware", typeof(PrefixAwarePolicy))]
    [InlineData(" PrefixAware ", typeof(PrefixAwarePolicy))]
    public void Factory_builds_each_named_policy(string name, Type expected)
    {
        var policy = RoutingPolicyFactory.Create(name, new SessionRoutingOptions(), new PrefixRoutingOptions { MaxIndexEntries = 1024 });
        Assert.IsType(expected, policy);
        Assert.Equal(name.Trim().ToLowerInvariant(), policy.Name);
    }

    [Fact]
    public void Factory_rejects_an_unknown_name_listing_the_valid_ones()
    {
        var error = Assert.Throws<ArgumentException>(() => RoutingPolicyFactory.Create("random-walk", new SessionRoutingOptions(), new PrefixRoutingOptions()));
        Assert.Contains("random-walk", error.Message);
        Assert.All(RoutingPolicyNames.All, name => Assert.Contains(name, error.Message));

        var noCacheServer = Assert.Throws<ArgumentException>(() => RoutingPolicyFactory.Create("kvaware"));
        Assert.Contains("cache server", noCacheServer.Message);
    }

    private static void AssertNoRepeats(IReadOnlyList<Engine> picks)
    {
        for (var i = 1; i < picks.Count; i++)
        {
            Assert.NotSame(picks[i - 1], picks[i]);
        }
    }
}
