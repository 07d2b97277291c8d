namespace VllmStack.Autoscaler.Policy;

/// <summary>
/// How one model's engine replicas follow load. Targets are per replica; the metric asking for the most replicas
/// wins. Defaults follow the usual references: 5 waiting requests per replica (the Production Stack's KEDA
/// trigger), Kubernetes HPA's 10 % tolerance and 300 s scale-down stabilisation, Knative KPA's 60 s stable and 6 s
/// panic windows with a 200 % panic threshold.
/// </summary>
public sealed class ScalingPolicyOptions
{
    /// <summary>Fewest replicas while the model has traffic (at least 1; see <see cref="ScaleToZero"/>).</summary>
    public int MinReplicas { get; set; } = 1;

    public int MaxReplicas { get; set; } = 4;

    /// <summary>Waiting requests (<c>vllm:num_requests_waiting</c>) per replica; 0 turns the metric off.</summary>
    public double TargetWaitingPerReplica { get; set; } = 5;

    /// <summary>KV cache usage (0–1, <c>vllm:kv_cache_usage_perc</c>) per replica; 0 turns the metric off.</summary>
    public double TargetKvUsage { get; set; } = 0.8;

    /// <summary>Requests per second per replica, as the router counts them; 0 (default) turns the metric off.</summary>
    public double TargetQpsPerReplica { get; set; }

    /// <summary>A metric within this fraction of its target asks for no change (HPA: 0.1).</summary>
    public double Tolerance { get; set; } = 0.1;

    /// <summary>Metrics are averaged over this window for scaling down (Knative's stable window).</summary>
    public double StableWindowSeconds { get; set; } = 60;

    /// <summary>…and over this shorter one for scaling up and for detecting bursts.</summary>
    public double PanicWindowSeconds { get; set; } = 6;

    /// <summary>A burst: the short window asks for this multiple of the current replicas (or more). Then scaling up skips
    /// its stabilisation window, and nothing scales down until a stable window has passed without another burst.</summary>
    public double PanicThreshold { get; set; } = 2;

    /// <summary>Scaling up takes the lowest recommendation of this window, so one spike alone does not add a GPU.</summary>
    public double ScaleUpStabilizationSeconds { get; set; } = 10;

    /// <summary>Scaling down takes the highest recommendation of this window, so load that comes and goes does not flap.</summary>
    public double ScaleDownStabilizationSeconds { get; set; } = 300;

    /// <summary>Most replicas added by one decision.</summary>
    public int MaxScaleUpStep { get; set; } = 4;

    /// <summary>Most replicas removed by one decision.</summary>
    public int MaxScaleDownStep { get; set; } = 1;

    /// <summary>A sample older than this is not evidence of anything.</summary>
    public double StaleAfterSeconds { get; set; } = 15;

    /// <summary>An idle model (no requests running, waiting or arriving) goes to zero replicas after <see cref="ScaleToZeroAfterSeconds"/>;
    /// the first request for it brings one back.</summary>
    public bool ScaleToZero { get; set; }

    public double ScaleToZeroAfterSeconds { get; set; } = 600;

    public IEnumerable<string> Validate(string prefix)
    {
        if (MinReplicas < 1 || MaxReplicas < MinReplicas)
        {
            yield return $"{prefix}: need 1 ≤ MinReplicas ≤ MaxReplicas (got {MinReplicas}, {MaxReplicas}); ScaleToZero allows zero";
        }
        if (TargetWaitingPerReplica < 0 || TargetKvUsage is < 0 or > 1 || TargetQpsPerReplica < 0)
        {
            yield return $"{prefix}: targets must be ≥ 0, and TargetKvUsage at most 1";
        }
        if (TargetWaitingPerReplica == 0 && TargetKvUsage == 0 && TargetQpsPerReplica == 0)
        {
            yield return $"{prefix}: at least one of TargetWaitingPerReplica, TargetKvUsage, TargetQpsPerReplica must be set";
        }
        if (Tolerance is < 0 or >= 1 || PanicThreshold <= 1)
        {
            yield return $"{prefix}: Tolerance must be in [0, 1) and PanicThreshold above 1";
        }
        if (StableWindowSeconds <= 0 || PanicWindowSeconds <= 0 || PanicWindowSeconds > StableWindowSeconds || StaleAfterSeconds <= 0)
        {
            yield return $"{prefix}: windows must be positive, the panic window no longer than the stable one";
        }
        if (ScaleUpStabilizationSeconds < 0 || ScaleDownStabilizationSeconds < 0 || ScaleToZeroAfterSeconds < 0)
        {
            yield return $"{prefix}: stabilisation windows and ScaleToZeroAfterSeconds must be ≥ 0";
        }
        if (MaxScaleUpStep < 1 || MaxScaleDownStep < 1)
        {
            yield return $"{prefix}: MaxScaleUpStep and MaxScaleDownStep must be at least 1";
        }
    }
}
