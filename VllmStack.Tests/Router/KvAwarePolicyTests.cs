using Microsoft.Extensions.Logging.Abstractions;
using VllmStack.Router.Engines;
using VllmStack.Router.Routing;

namespace VllmStack.Tests.Router;

/// <summary>The kvaware score on its own (the lookup is covered end to end in KvAwareRoutingTests).</summary>
public sealed class KvAwarePolicyTests
{
    private static readonly KvAwarePolicy Policy = new(new KvAwareRoutingOptions(),
        new KvLookupClient(new HttpClient(), new Uri("http://127.0.0.1:1/"), new KvAwareRoutingOptions(), NullLogger<KvLookupClient>.Instance));

    private static Engine Engine(int id, int inFlight = 0, double kv = 0)
    {
        var engine = new Engine(id, new Uri($"http://127.0.0.1:{9000 + id}/"));
        engine.SetLoad(new EngineLoad(0, 0, kv, 0, 0, DateTimeOffset.UtcNow));
        for (var i = 0; i < inFlight; i++)
        {
            engine.BeginRequest();
        }
        return engine;
    }

    private static KvLookup Held(int total, params (Engine Engine, int Tokens)[] held) =>
        new(total, held.ToDictionary(h => h.Engine.Name, h => h.Tokens), 0);

    [Fact]
    public void The_engine_holding_most_of_the_prompt_wins_despite_a_little_more_load()
    {
        var a = Engine(1, inFlight: 3);
        var b = Engine(2, inFlight: 1);
        Assert.Same(a, Policy.Choose(Held(1000, (a, 960)), [a, b]));
    }

    [Fact]
    public void A_far_busier_holder_is_passed_over_for_the_least_loaded()
    {
        var a = Engine(1, inFlight: 30);
        var b = Engine(2, inFlight: 0);
        Assert.Same(b, Policy.Choose(Held(1000, (a, 1000)), [a, b]));
    }

    [Fact]
    public void Without_any_held_prefix_equal_engines_take_turns()
    {
        Engine[] engines = [Engine(1), Engine(2), Engine(3)];
        var chosen = Enumerable.Range(0, 6).Select(_ =>
        {
            var engine = Policy.Choose(Held(10), engines);
            engine.BeginRequest();
            return engine.Id;
        }).ToList();
        Assert.Equal(3, chosen.Distinct().Count());
    }

    [Fact]
    public void Free_kv_cache_breaks_ties_between_equal_holders()
    {
        var full = Engine(1, kv: 0.95);
        var free = Engine(2, kv: 0.10);
        Assert.Same(free, Policy.Choose(Held(1000, (full, 500), (free, 500)), [full, free]));
    }
}
