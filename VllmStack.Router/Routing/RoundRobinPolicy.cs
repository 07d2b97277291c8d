using VllmStack.Router.Engines;

namespace VllmStack.Router.Routing;

/// <summary>
/// Cycles through candidates in engine-Id order. The shared state is the Id of the last chosen engine, not a
/// counter modulo the list length: when engines come, go or a retry narrows the list, a raw counter can land
/// on the engine it just picked, while "the next Id after the last one" never does with two or more candidates.
/// </summary>
public sealed class RoundRobinPolicy : IRoutingPolicy
{
    private const int NothingChosenYet = int.MinValue;

    private int _lastChosenId = NothingChosenYet;

    public string Name => RoutingPolicyNames.RoundRobin;

    public ValueTask<Engine> ChooseAsync(RoutingRequest request, IReadOnlyList<Engine> candidates, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Choose(candidates));

    public Engine Choose(IReadOnlyList<Engine> candidates)
    {
        // Compare-and-swap so concurrent callers form one sequence in which each pick follows the previous one.
        while (true)
        {
            var last = Volatile.Read(ref _lastChosenId);
            var next = Successor(last, candidates);
            if (Interlocked.CompareExchange(ref _lastChosenId, next.Id, last) == last)
            {
                return next;
            }
        }
    }

    /// <summary>The candidate with the smallest Id above <paramref name="lastId"/>, wrapping to the smallest Id.</summary>
    private static Engine Successor(int lastId, IReadOnlyList<Engine> candidates)
    {
        Engine? lowest = null;
        Engine? successor = null;
        for (var i = 0; i < candidates.Count; i++)
        {
            var engine = candidates[i];
            if (lowest is null || engine.Id < lowest.Id)
            {
                lowest = engine;
            }
            if (engine.Id > lastId && (successor is null || engine.Id < successor.Id))
            {
                successor = engine;
            }
        }
        return successor ?? lowest ?? throw new ArgumentException("There must be at least one candidate.", nameof(candidates));
    }
}
