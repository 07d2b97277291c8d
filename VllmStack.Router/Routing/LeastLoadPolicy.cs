using VllmStack.Router.Engines;

namespace VllmStack.Router.Routing;

/// <summary>
/// The candidate with the lowest <see cref="Engine.LoadScore"/>; ties go to the lower KV-cache usage, then
/// rotate among the engines still equal. Rotation matters for a burst arriving between scrapes whose
/// requests are chosen before any of them calls <see cref="Engine.BeginRequest"/>: without it they would
/// all herd onto the first engine of the list.
/// </summary>
public sealed class LeastLoadPolicy : IRoutingPolicy
{
    private const double Tolerance = 1e-9;
    private const int StackLimit = 128;

    private int _rotation;

    public string Name => RoutingPolicyNames.LeastLoad;

    public ValueTask<Engine> ChooseAsync(RoutingRequest request, IReadOnlyList<Engine> candidates, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Choose(candidates));

    public Engine Choose(IReadOnlyList<Engine> candidates)
    {
        var count = candidates.Count;
        if (count == 0)
        {
            throw new ArgumentException("There must be at least one candidate.", nameof(candidates));
        }
        if (count == 1)
        {
            return candidates[0];
        }

        // Loads change concurrently (InFlight), so read each once and decide on that snapshot.
        Span<double> scores = count <= StackLimit ? stackalloc double[count] : new double[count];
        Span<double> kvUsages = count <= StackLimit ? stackalloc double[count] : new double[count];
        var bestScore = double.MaxValue;
        for (var i = 0; i < count; i++)
        {
            scores[i] = candidates[i].LoadScore;
            kvUsages[i] = candidates[i].Load.KvCacheUsage;
            bestScore = Math.Min(bestScore, scores[i]);
        }

        var bestKv = double.MaxValue;
        for (var i = 0; i < count; i++)
        {
            if (IsEqual(scores[i], bestScore))
            {
                bestKv = Math.Min(bestKv, kvUsages[i]);
            }
        }

        var ties = 0;
        for (var i = 0; i < count; i++)
        {
            if (IsBest(scores[i], kvUsages[i], bestScore, bestKv))
            {
                ties++;
            }
        }

        var pick = ties == 1 ? 0 : (int)((uint)Interlocked.Increment(ref _rotation) % (uint)ties);
        for (var i = 0; i < count; i++)
        {
            if (IsBest(scores[i], kvUsages[i], bestScore, bestKv) && pick-- == 0)
            {
                return candidates[i];
            }
        }
        throw new InvalidOperationException("Unreachable: the best candidate was not found again.");
    }

    private static bool IsBest(double score, double kvUsage, double bestScore, double bestKv) =>
        IsEqual(score, bestScore) && IsEqual(kvUsage, bestKv);

    private static bool IsEqual(double a, double b) => Math.Abs(a - b) <= Tolerance;
}
