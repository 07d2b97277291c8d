using System.Buffers;
using VllmStack.Router.Engines;

namespace VllmStack.Router.Routing;

/// <summary>
/// Sends a prompt to the candidate that most recently saw its longest prefix, so the engine's prefix cache
/// serves it, unless that engine is clearly overloaded compared with the least-loaded candidate: then (and
/// when nothing matches) the least-loaded engine takes it. Either way the chosen engine is recorded as holding
/// the prompt's prefixes, so the next turn of the conversation finds it, and a hot prefix that overflowed to
/// a second engine can afterwards be served by whichever of its holders is less loaded.
/// </summary>
public sealed class PrefixAwarePolicy : IRoutingPolicy
{
    private const int StackLimit = 256;

    private readonly int _chunkSize;
    private readonly int _imbalanceAbsolute;
    private readonly double _imbalanceRatio;
    private readonly LeastLoadPolicy _leastLoad;

    public PrefixAwarePolicy(PrefixRoutingOptions options, LeastLoadPolicy? leastLoad = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.ChunkSize, 1, nameof(options.ChunkSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxIndexEntries, 1, nameof(options.MaxIndexEntries));
        ArgumentOutOfRangeException.ThrowIfNegative(options.ImbalanceAbsolute, nameof(options.ImbalanceAbsolute));
        ArgumentOutOfRangeException.ThrowIfNegative(options.ImbalanceRatio, nameof(options.ImbalanceRatio));
        _chunkSize = options.ChunkSize;
        _imbalanceAbsolute = options.ImbalanceAbsolute;
        _imbalanceRatio = options.ImbalanceRatio;
        _leastLoad = leastLoad ?? new LeastLoadPolicy();
        Index = new PrefixIndex(options.MaxIndexEntries);
    }

    public string Name => RoutingPolicyNames.PrefixAware;

    public PrefixIndex Index { get; }

    public ValueTask<Engine> ChooseAsync(RoutingRequest request, IReadOnlyList<Engine> candidates, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Choose(request, candidates));

    public Engine Choose(RoutingRequest request, IReadOnlyList<Engine> candidates)
    {
        var prompt = request.PromptText;
        var chunks = prompt is null ? 0 : PrefixIndex.ChunkCount(prompt.Length, _chunkSize);
        if (chunks == 0)
        {
            return _leastLoad.Choose(candidates);
        }
        var rented = ArrayPool<ulong>.Shared.Rent(chunks);
        try
        {
            var hashes = rented.AsSpan(0, chunks);
            PrefixIndex.HashChunks(request.Model, prompt, _chunkSize, hashes);
            var chosen = ChooseFor(hashes, candidates);
            Index.Record(hashes, chosen.Id);
            return chosen;
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(rented);
        }
    }

    public void OnEnginesChanged(IReadOnlyCollection<Engine> engines)
    {
        var present = new HashSet<int>(engines.Select(engine => engine.Id));
        foreach (var id in Index.GetEngineIds())
        {
            if (!present.Contains(id))
            {
                Index.Remove(id);
            }
        }
    }

    /// <summary>
    /// True when the prefix holder is overloaded by both measures: absolutely (a few extra requests on idle
    /// engines do not count) and relatively (a few extra on busy engines do not either).
    /// </summary>
    public bool IsImbalanced(double holderScore, double minScore) =>
        holderScore - minScore > _imbalanceAbsolute && holderScore > _imbalanceRatio * (minScore + 1);

    private Engine ChooseFor(ReadOnlySpan<ulong> hashes, IReadOnlyList<Engine> candidates)
    {
        var count = candidates.Count;
        Span<int> ids = count <= StackLimit ? stackalloc int[count] : new int[count];
        Span<bool> holds = count <= StackLimit ? stackalloc bool[count] : new bool[count];
        for (var i = 0; i < count; i++)
        {
            ids[i] = candidates[i].Id;
        }
        if (Index.LongestMatch(hashes, ids, holds) == 0)
        {
            return _leastLoad.Choose(candidates);
        }

        Engine? holder = null;
        var holderScore = double.MaxValue;
        var minScore = double.MaxValue;
        for (var i = 0; i < count; i++)
        {
            var score = candidates[i].LoadScore;
            minScore = Math.Min(minScore, score);
            if (holds[i] && score < holderScore)
            {
                holder = candidates[i];
                holderScore = score;
            }
        }
        return holder is null || IsImbalanced(holderScore, minScore) ? _leastLoad.Choose(candidates) : holder;
    }
}
