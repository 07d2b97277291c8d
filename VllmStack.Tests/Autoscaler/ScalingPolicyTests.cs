using VllmStack.Autoscaler.Policy;

namespace VllmStack.Tests.Autoscaler;

/// <summary>
/// The policy over simulated time: every 2 s a sample is taken from a load function and the policy decides; its
/// decision is applied at once (the replicas it asks for report in the next sample). Load is given as waiting
/// requests, KV usage in replica-equivalents (spread over the replicas) and requests per second.
/// </summary>
public sealed class ScalingPolicyTests
{
    private static readonly DateTimeOffset Start = new(2026, 11, 21, 12, 0, 0, TimeSpan.Zero);

    private sealed record Load(double Waiting, double KvReplicas, double Qps = 0, long Unserved = 0);

    private sealed record Step(double Seconds, int Replicas, ScalingDecision Decision);

    private static ScalingPolicyOptions Options(Action<ScalingPolicyOptions>? change = null)
    {
        var options = new ScalingPolicyOptions { MinReplicas = 1, MaxReplicas = 4 };
        change?.Invoke(options);
        return options;
    }

    private static List<Step> Simulate(ScalingPolicyOptions options, int replicas, double seconds, Func<double, Load> load,
        Func<double, int, int>? reporting = null, Func<double, bool>? sampleMissing = null)
    {
        var history = new List<MetricSample>();
        var state = ScalingState.Initial;
        var steps = new List<Step>();
        for (var t = 0.0; t <= seconds; t += 2)
        {
            var now = Start.AddSeconds(t);
            if (sampleMissing?.Invoke(t) != true)
            {
                var l = load(t);
                var reporters = reporting?.Invoke(t, replicas) ?? replicas;
                history.Add(new MetricSample(now, reporters, reporters == 0 ? 0 : l.Waiting, reporters == 0 ? 0 : l.KvReplicas * 4,
                    reporters == 0 ? 0 : Math.Min(1, l.KvReplicas / reporters), l.Qps, l.Unserved));
            }
            var (decision, next) = ScalingPolicy.Decide(options, history, replicas, now, state);
            state = next;
            steps.Add(new Step(t, replicas, decision));
            replicas = decision.Desired;
        }
        return steps;
    }

    private static int[] Replicas(List<Step> steps) => [.. steps.Select(s => s.Decision.Desired)];

    [Fact]
    public void Steady_load_at_the_targets_holds_the_replica_count()
    {
        // 2 replicas, 10 waiting (5 each, the target), KV at 0.75 each (within 10 % of 0.8).
        var steps = Simulate(Options(), 2, 900, _ => new Load(10, 1.5));
        Assert.All(steps, s => Assert.Equal(2, s.Decision.Desired));
    }

    [Fact]
    public void A_step_up_adds_replicas_after_the_scale_up_window_but_not_on_one_spike()
    {
        // 2 replicas at KV 0.6 each; from t = 100 s, 15 waiting (wants 3: a step, under the 2× panic threshold).
        var steps = Simulate(Options(), 2, 200, t => new Load(t >= 100 ? 15 : 0, 1.2));
        var first = steps.First(s => s.Decision.Desired > s.Replicas);
        // The short window (6 s) sees the full step at 106 s; the 10 s scale-up window then needs it to last.
        Assert.InRange(first.Seconds, 114, 118);
        Assert.Equal(3, first.Decision.Desired);
        Assert.Equal("waiting", first.Decision.Driver);
        Assert.Contains("waiting for a target of 5", first.Decision.Reason);
        Assert.False(first.Decision.Panicking);
        Assert.Equal(3, steps[^1].Decision.Desired);

        // One 2-second spike that alone would ask for 3 does not add a replica.
        var spike = Simulate(Options(), 2, 200, t => new Load(t is >= 100 and < 102 ? 50 : 0, 1.2));
        Assert.All(spike, s => Assert.Equal(2, s.Decision.Desired));
    }

    [Fact]
    public void A_burst_scales_up_at_once_by_at_most_the_step_and_blocks_scaling_down_for_a_stable_window()
    {
        var options = Options(o => { o.MaxReplicas = 8; o.MaxScaleUpStep = 3; o.ScaleDownStabilizationSeconds = 20; });
        // 100 waiting on 1 replica from t = 100 s to t = 110 s, then nothing.
        var steps = Simulate(options, 1, 400, t => new Load(t is >= 100 and < 110 ? 100 : 0, t is >= 100 and < 110 ? 1 : 0.2));
        var burst = steps.First(s => s.Seconds == 100);
        Assert.True(burst.Decision.Panicking);
        Assert.True(burst.Decision.Desired > 1);
        Assert.Contains("burst", burst.Decision.Reason);
        // Each decision adds at most 3, without waiting for the scale-up window, up to the maximum.
        var ups = steps.Where(s => s.Decision.Desired > s.Replicas).ToList();
        Assert.All(ups, s => Assert.InRange(s.Decision.Desired - s.Replicas, 1, 3));
        Assert.Contains(ups, s => s.Decision.Reason.Contains("at most 3 more"));
        Assert.Equal(8, steps.First(s => s.Seconds == 106).Decision.Desired);
        // No scale-down before the panic ends (a 60 s stable window after the last burst sample at ~108 s).
        var firstDown = steps.First(s => s.Decision.Desired < s.Replicas);
        Assert.True(firstDown.Seconds >= 166, $"scaled down at {firstDown.Seconds} s");
        Assert.Contains(steps.Where(s => s.Seconds is > 110 and < 166), s => s.Decision.Reason.Contains("no scale-down while a burst is recent"));
    }

    [Fact]
    public void A_slow_decline_steps_down_one_replica_at_a_time_after_the_scale_down_window()
    {
        // KV load falls linearly from 3.6 replica-equivalents to 0.4 over 20 minutes, starting at 4 replicas.
        var steps = Simulate(Options(), 4, 1800, t => new Load(0, Math.Max(0.4, 3.6 - 3.2 * t / 1200)));
        var desired = Replicas(steps);
        for (var i = 1; i < desired.Length; i++)
        {
            Assert.InRange(desired[i], desired[i - 1] - 1, desired[i - 1]);
        }
        Assert.Equal(1, desired[^1]);
        // Three replicas at 0.8 carry 2.4: the load asks for 3 from t = 450 s; the 300 s window holds until ≈ 750 s.
        var firstDown = steps.First(s => s.Decision.Desired < s.Replicas);
        Assert.InRange(firstDown.Seconds, 740, 800);
        Assert.Equal("kv_usage", firstDown.Decision.Driver);
    }

    [Fact]
    public void Flapping_load_raises_replicas_and_keeps_them_instead_of_following_each_swing()
    {
        // Load alternates every 30 s between 3 replicas' worth and 1 replica's worth of KV.
        var steps = Simulate(Options(), 1, 1200, t => new Load(0, (int)(t / 30) % 2 == 0 ? 2.9 : 0.7));
        var desired = Replicas(steps);
        var changes = desired.Zip(desired.Skip(1)).Count(p => p.First != p.Second);
        Assert.True(changes <= 3, $"{changes} changes: {string.Join(',', desired.Distinct())}");
        Assert.Equal(4, desired.Max());
        Assert.All(desired.Skip(desired.Length / 4), d => Assert.True(d >= 3));
    }

    [Fact]
    public void Stale_missing_or_partial_metrics_never_scale_down()
    {
        var options = Options(o => o.ScaleDownStabilizationSeconds = 30);
        // Idle at 3 replicas, but every sample is 20 s old by the time of the decision (15 s is stale).
        var history = new List<MetricSample> { new(Start, 3, 0, 0, 0, 0, 0) };
        var (decision, _) = ScalingPolicy.Decide(options, history, 3, Start.AddSeconds(20), ScalingState.Initial);
        Assert.Equal(3, decision.Desired);
        Assert.Contains("no fresh metrics", decision.Reason);

        // Idle, but one of three replicas has not reported all along: hold.
        var partial = Simulate(options, 3, 400, _ => new Load(0, 0.3), reporting: (_, replicas) => replicas - 1);
        Assert.All(partial, s => Assert.True(s.Decision.Desired == 3, $"{s.Seconds}: {s.Decision.Reason}"));
        Assert.Contains("only 2 of 3 replicas report", partial[^1].Decision.Reason);

        // …yet partial metrics may still scale up.
        var busy = Simulate(options, 2, 60, _ => new Load(40, 1), reporting: (_, replicas) => Math.Max(1, replicas - 1));
        Assert.True(busy[^1].Decision.Desired > 2);

        // A gap of 20 s in the samples inside the window blocks scaling down until the window is whole again.
        var gap = Simulate(options, 2, 300, _ => new Load(0, 0.2), sampleMissing: t => t is >= 100 and < 120);
        Assert.All(gap.Where(s => s.Seconds is >= 100 and < 170), s => Assert.True(s.Decision.Desired >= s.Replicas, $"{s.Seconds}: {s.Decision.Desired} {s.Decision.Reason}"));
        Assert.Equal(1, gap[^1].Decision.Desired);

        // Just started: a stable window of evidence is needed before the first scale-down.
        var fresh = Simulate(options, 3, 100, _ => new Load(0, 0.1));
        Assert.All(fresh.Where(s => s.Seconds < 60), s => Assert.True(s.Decision.Desired == 3, $"{s.Seconds}: {s.Decision.Desired} {s.Decision.Reason}"));
    }

    [Fact]
    public void Replicas_stay_within_min_and_max()
    {
        var huge = Simulate(Options(o => o.MaxScaleUpStep = 10), 1, 120, _ => new Load(500, 1));
        Assert.Equal(4, huge.Max(s => s.Decision.Desired));
        Assert.Contains("maximum 4", huge.First(s => s.Decision.Desired == 4).Decision.Reason);

        var idle = Simulate(Options(o => { o.MinReplicas = 2; o.ScaleDownStabilizationSeconds = 30; }), 4, 900, _ => new Load(0, 0));
        Assert.Equal(2, idle[^1].Decision.Desired);
        Assert.True(idle.Min(s => s.Decision.Desired) >= 2);

        // Without ScaleToZero an idle model keeps one replica.
        var one = Simulate(Options(o => o.ScaleDownStabilizationSeconds = 30), 2, 1800, _ => new Load(0, 0));
        Assert.Equal(1, one[^1].Decision.Desired);
    }

    [Fact]
    public void Scale_to_zero_after_idling_and_back_to_one_on_the_first_request()
    {
        var options = Options(o => { o.ScaleToZero = true; o.ScaleToZeroAfterSeconds = 120; o.ScaleDownStabilizationSeconds = 30; });
        // Busy for 60 s, then idle; at t = 600 s a request arrives and is turned away (no engine).
        var steps = Simulate(options, 1, 700, t => t < 60 ? new Load(0, 0.8, 2) : new Load(0, 0, 0, t >= 600 ? 1 : 0));
        var zero = steps.First(s => s.Decision.Desired == 0);
        Assert.InRange(zero.Seconds, 180, 200);
        Assert.Equal("idle", zero.Decision.Driver);
        Assert.All(steps.Where(s => s.Seconds > zero.Seconds && s.Seconds < 600), s => Assert.Equal(0, s.Decision.Desired));
        var back = steps.First(s => s.Seconds >= 600);
        Assert.Equal(1, back.Decision.Desired);
        Assert.Equal("demand", back.Decision.Driver);
        Assert.Contains("arrived while scaled to zero", back.Decision.Reason);

        // Not idle long enough (a request at t = 100 s): no zero before t = 220 s.
        var busyLater = Simulate(options, 1, 300, t => new Load(0, t is >= 100 and < 102 ? 0.5 : 0, t is >= 100 and < 102 ? 1 : 0));
        Assert.True(busyLater.First(s => s.Decision.Desired == 0).Seconds >= 220);
    }

    [Fact]
    public void Qps_target_counts_when_set_and_the_largest_ask_wins()
    {
        var options = Options(o => o.TargetQpsPerReplica = 10);
        var steps = Simulate(options, 1, 60, _ => new Load(2, 0.5, 35));
        var up = steps.First(s => s.Decision.Desired > s.Replicas);
        Assert.Equal("qps", up.Decision.Driver);
        Assert.Equal(4, steps[^1].Decision.Desired);
        Assert.Equal(4, up.Decision.Signals!.ByQps);
    }
}
