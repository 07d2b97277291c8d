using System.Text;
using VllmStack.Router.Engines;
using VllmStack.Router.Routing;
using static VllmStack.Tests.Router.RoutingTestEngines;

namespace VllmStack.Tests.Router;

public sealed class PrefixAwarePolicyTests
{
    private const int ChunkSize = 128;

    private static readonly string[] Words = ["the", "engine", "cache", "token", "prefix", "router", "model", "request", "batch", "block", "queue", "reply"];

    [Fact]
    public void Multi_round_conversations_each_stay_on_one_engine_while_conversations_spread()
    {
        var engines = Create(4);
        var policy = NewPolicy();
        var random = new Random(11);
        var prompts = Enumerable.Range(0, 5).Select(i => $"conversation {i}: " + Text(random, ChunkSize + 20)).ToArray();
        var engineOf = new Engine?[prompts.Length];
        var active = new Engine?[prompts.Length];

        for (var round = 0; round < 8; round++)
        {
            for (var c = 0; c < prompts.Length; c++)
            {
                // Each round: the previous prompt plus the reply and a new user turn, a chunk or two longer.
                prompts[c] += Text(random, random.Next(ChunkSize / 2, 2 * ChunkSize));
                active[c]?.EndRequest();
                var pick = policy.Choose(Request(prompt: prompts[c]), engines);
                pick.BeginRequest();
                active[c] = pick;
                Assert.Same(engineOf[c] ??= pick, pick);
            }
        }
        Assert.True(engineOf.Distinct().Count() >= 3, "conversations should spread over the engines");
    }

    [Fact]
    public void Distinct_prefixes_spread_across_engines()
    {
        var engines = Create(4);
        var policy = NewPolicy();
        var random = new Random(3);
        var used = new HashSet<Engine>();
        for (var i = 0; i < 40; i++)
        {
            var pick = policy.Choose(Request(prompt: $"prompt {i} " + Text(random, 3 * ChunkSize)), engines);
            pick.BeginRequest();
            used.Add(pick);
        }
        Assert.True(used.Count >= 3, $"only {used.Count} engines used");
        Assert.All(engines, engine => Assert.InRange(engine.InFlight, 8, 12));
    }

    [Fact]
    public void A_hot_prefix_on_an_overloaded_engine_falls_back_to_the_least_loaded_engine()
    {
        var engines = Create(4);
        var policy = NewPolicy();
        var random = new Random(5);
        var system = "You are a helpful assistant. " + Text(random, 2 * ChunkSize);
        var holder = policy.Choose(Request(prompt: system + "first question"), engines);

        // A modest lead (up to ImbalanceAbsolute = 2 requests) keeps the cache affinity.
        for (var i = 0; i < 2; i++)
        {
            holder.BeginRequest();
        }
        Assert.Same(holder, policy.Choose(Request(prompt: system + "second question"), engines));

        // A large lead, absolute and relative, sends the prefix elsewhere: to the least-loaded engine.
        for (var i = 0; i < 20; i++)
        {
            holder.BeginRequest();
        }
        var others = engines.Where(engine => engine != holder).ToArray();
        others[0].SetRunning(2);
        others[1].SetRunning(1);
        var fallback = policy.Choose(Request(prompt: system + "third question"), engines);
        Assert.Same(others[2], fallback);

        // The fallback now holds the prefix too, and wins as the less-loaded holder.
        fallback.BeginRequest();
        Assert.Same(fallback, policy.Choose(Request(prompt: system + "fourth question"), engines));
    }

    [Fact]
    public void A_hot_prefix_under_sustained_traffic_does_not_pile_onto_one_engine()
    {
        var engines = Create(4);
        var policy = NewPolicy();
        var random = new Random(9);
        var system = Text(random, 4 * ChunkSize);
        for (var i = 0; i < 200; i++)
        {
            policy.Choose(Request(prompt: $"{system} question {i}"), engines).BeginRequest();
        }
        var loads = engines.Select(engine => engine.InFlight).ToArray();
        Assert.True(loads.Max() - loads.Min() <= 9, $"in flight: {string.Join(", ", loads)}");
    }

    [Fact]
    public void Retries_and_subsets_only_pick_candidates()
    {
        var engines = Create(3);
        var policy = NewPolicy();
        var prompt = Text(new Random(1), 3 * ChunkSize);
        var holder = policy.Choose(Request(prompt: prompt), engines);
        var rest = engines.Where(engine => engine != holder).ToArray();
        rest[0].SetRunning(4);

        Assert.Same(rest[1], policy.Choose(Request(prompt: prompt), rest));
        Assert.Equal(new[] { holder.Id, rest[1].Id }.Order(), policy.Index.GetEngineIds().Order());
    }

    [Fact]
    public void Prompts_without_a_whole_chunk_go_to_the_least_loaded_engine_and_are_not_indexed()
    {
        var engines = Create(3);
        engines[0].SetRunning(2);
        engines[2].SetRunning(1);
        var policy = NewPolicy();
        Assert.Same(engines[1], policy.Choose(Request(prompt: null), engines));
        Assert.Same(engines[1], policy.Choose(Request(prompt: "short"), engines));
        Assert.Equal(0, policy.Index.Count);
    }

    [Fact]
    public void Models_do_not_share_prefixes()
    {
        var engines = Create(2);
        var policy = NewPolicy();
        var prompt = Text(new Random(2), 2 * ChunkSize);
        var first = policy.Choose(Request(prompt: prompt, model: "a"), engines);
        first.BeginRequest();
        Assert.NotSame(first, policy.Choose(Request(prompt: prompt, model: "b"), engines));
        Assert.Same(first, policy.Choose(Request(prompt: prompt, model: "a"), engines));
    }

    [Fact]
    public void Departed_engines_are_dropped_from_the_index()
    {
        var engines = Create(4);
        var policy = NewPolicy();
        var random = new Random(4);
        var prompts = Enumerable.Range(0, 8).Select(i => $"{i} " + Text(random, 2 * ChunkSize)).ToArray();
        var owners = prompts.Select(prompt =>
        {
            var pick = policy.Choose(Request(prompt: prompt), engines);
            pick.BeginRequest();
            return pick;
        }).ToArray();
        Assert.Equal(4, policy.Index.EngineCount);
        var countBefore = policy.Index.Count;

        var departed = engines[1];
        policy.OnEnginesChanged([.. engines.Where(engine => engine != departed)]);

        Assert.DoesNotContain(departed.Id, policy.Index.GetEngineIds());
        Assert.Equal(countBefore - owners.Count(owner => owner == departed) * 2, policy.Index.Count);
        foreach (var prompt in prompts.Where((_, i) => owners[i] == departed))
        {
            Assert.False(policy.Index.LongestMatch(PrefixIndex.HashChunks("m", prompt, ChunkSize), [departed.Id]).Found);
        }
    }

    private static PrefixAwarePolicy NewPolicy() => new(new PrefixRoutingOptions { ChunkSize = ChunkSize, MaxIndexEntries = 4096 });

    private static string Text(Random random, int length)
    {
        var text = new StringBuilder(length + 16);
        while (text.Length < length)
        {
            text.Append(Words[random.Next(Words.Length)]).Append(' ');
        }
        return text.ToString(0, length);
    }
}
