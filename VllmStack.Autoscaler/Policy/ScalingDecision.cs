namespace VllmStack.Autoscaler.Policy;

/// <summary>What each metric asked for: its window average and the replicas it wants (null: metric off or no data).</summary>
public sealed record ScalingSignals(double Waiting, double Running, double KvUsage, double Qps, int? ByWaiting, int? ByKvUsage, int? ByQps);

/// <summary>
/// The outcome of one evaluation: the replicas wanted and, in words, why. <see cref="Driver"/> names what decided it
/// in one word (for a metric label): waiting, kv_usage, qps, demand (a request while at zero), idle, none.
/// </summary>
public sealed record ScalingDecision(int Current, int Desired, string Reason, bool Panicking, ScalingSignals? Signals, string Driver)
{
    public string Direction => Desired > Current ? "up" : Desired < Current ? "down" : "hold";
}

/// <summary>What the policy remembers between evaluations: recent recommendations (for the stabilisation windows) and
/// the end of the current panic.</summary>
public sealed record ScalingState(IReadOnlyList<Recommendation> Recommendations, DateTimeOffset PanicUntil)
{
    public static ScalingState Initial { get; } = new([], DateTimeOffset.MinValue);
}

public readonly record struct Recommendation(DateTimeOffset At, int Replicas);
