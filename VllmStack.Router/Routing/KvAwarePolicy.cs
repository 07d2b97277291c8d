using VllmStack.Router.Engines;

namespace VllmStack.Router.Routing;

/// <summary>
/// Routes to the engine that already holds the prompt's KV, weighed against load, as llm-d's scheduler does:
/// score = PrefixWeight × (tokens held ÷ prompt tokens) + QueueWeight × (1 − load ÷ (busiest + 1)) + KvWeight × (1 − KV usage),
/// highest wins. The imbalance guard then sends the request to the least-loaded engine if the winner is far busier,
/// so a hot conversation cannot pile everything on one engine. No answer from the cache server in time: least-loaded.
/// </summary>
public sealed class KvAwarePolicy(KvAwareRoutingOptions options, KvLookupClient lookup, LeastLoadPolicy? leastLoad = null) : IRoutingPolicy
{
    private readonly LeastLoadPolicy _leastLoad = leastLoad ?? new LeastLoadPolicy();

    public string Name => RoutingPolicyNames.KvAware;

    public KvLookupClient Lookup => lookup;

    public async ValueTask<Engine> ChooseAsync(RoutingRequest request, IReadOnlyList<Engine> candidates, CancellationToken cancellationToken)
    {
        if (candidates.Count == 1)
        {
            return candidates[0];
        }
        var (baseModel, lora) = BaseModelOf(request.Model, candidates);
        var found = await lookup.LookupAsync(request, _leastLoad.Choose(candidates), baseModel, lora, cancellationToken).ConfigureAwait(false);
        return found is null ? _leastLoad.Choose(candidates) : Choose(found, candidates);
    }

    public Engine Choose(KvLookup found, IReadOnlyList<Engine> candidates)
    {
        var busiest = candidates.Max(e => e.LoadScore);
        var scores = candidates.Select(engine =>
            options.PrefixWeight * (found.TotalTokens > 0 ? found.EngineTokens.GetValueOrDefault(engine.Name) / (double)found.TotalTokens : 0)
            + options.QueueWeight * (1 - engine.LoadScore / (busiest + 1))
            + options.KvWeight * (1 - engine.Load.KvCacheUsage)).ToArray();
        var top = scores.Max();
        // Equal scores (nobody holds the prompt, equal load) are spread as leastload spreads them, not piled on the first.
        var best = candidates.Where((_, i) => scores[i] >= top - 1e-9).ToList();
        var chosen = best.Count == 1 ? best[0] : _leastLoad.Choose(best);
        var least = candidates.Min(e => e.LoadScore);
        if (chosen.LoadScore - least > options.ImbalanceAbsolute && chosen.LoadScore > options.ImbalanceRatio * (least + 1))
        {
            return _leastLoad.Choose(candidates);
        }
        return chosen;
    }

    /// <summary>A LoRA adapter's KV chain is rooted in its base model and the adapter: the engines' own model lists say which.</summary>
    private static (string BaseModel, string? Lora) BaseModelOf(string model, IReadOnlyList<Engine> candidates)
    {
        foreach (var engine in candidates)
        {
            if (engine.ModelInfos.FirstOrDefault(m => m.Id == model) is { Parent: { } parent })
            {
                return (parent, model);
            }
        }
        return (model, null);
    }
}
