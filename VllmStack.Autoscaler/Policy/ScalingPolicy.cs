using System.Globalization;

namespace VllmStack.Autoscaler.Policy;

/// <summary>
/// The scaling decision as a pure function of the metric history, the current replica count, the time and what the
/// policy remembered from its last call. Each enabled metric asks for ceil(replicas × average ÷ target) replicas
/// (HPA's formula, with its tolerance) and the largest ask wins. Scaling up follows the short window, filtered by the
/// scale-up stabilisation window; scaling down follows the long window and the highest recommendation of the
/// scale-down window, and happens only on complete, fresh metrics from every replica. A burst (the short window asking
/// for PanicThreshold × current or more) scales up at once and blocks scaling down for a stable window.
/// </summary>
public static class ScalingPolicy
{
    public static (ScalingDecision Decision, ScalingState State) Decide(
        ScalingPolicyOptions options, IReadOnlyList<MetricSample> history, int current, DateTimeOffset now, ScalingState state)
    {
        var keep = TimeSpan.FromSeconds(Math.Max(options.ScaleUpStabilizationSeconds, options.ScaleDownStabilizationSeconds));
        var recommendations = state.Recommendations.Where(r => r.At > now - keep).ToList();
        var stale = TimeSpan.FromSeconds(options.StaleAfterSeconds);
        var samples = history.Where(s => s.At <= now).OrderBy(s => s.At).ToList();
        if (samples.Count == 0 || samples[^1].At < now - stale)
        {
            return (Hold(current, $"no fresh metrics (none in {Seconds(options.StaleAfterSeconds)}): holding at {current}"), state with { Recommendations = recommendations });
        }
        if (current == 0)
        {
            return (FromZero(options, samples, now), state with { Recommendations = recommendations });
        }

        var longWindow = Window(samples, now, options.StableWindowSeconds);
        var shortWindow = Window(samples, now, options.PanicWindowSeconds);
        var stable = Signals(options, longWindow, current);
        var burst = Signals(options, shortWindow, current);
        if (stable is null || burst is null)
        {
            return (Hold(current, $"no replica reports metrics yet: holding at {current}"), state with { Recommendations = recommendations });
        }
        var stableWant = Largest(stable);
        var burstWant = Largest(burst);

        var panicUntil = state.PanicUntil;
        var burstNow = burstWant.Replicas > current && burstWant.Replicas >= options.PanicThreshold * current;
        if (burstNow)
        {
            panicUntil = now + TimeSpan.FromSeconds(options.StableWindowSeconds);
        }
        var panicking = now < panicUntil;

        // Up on the short window; down only as far as both windows allow.
        var raw = burstWant.Replicas > current ? burstWant
            : stableWant.Replicas < current ? (stableWant.Replicas >= burstWant.Replicas ? stableWant : burstWant)
            : new Ask(current, "none", "load matches the targets");
        recommendations.Add(new Recommendation(now, raw.Replicas));
        var nextState = new ScalingState(recommendations, panicUntil);
        var signals = burst.Replicas > current ? burst.Signals : stable.Signals;
        var reason = raw.Why;
        int desired;
        if (raw.Replicas > current)
        {
            if (panicking)
            {
                desired = raw.Replicas;
                reason += $"; burst (short window asks ≥ {options.PanicThreshold.ToString(CultureInfo.InvariantCulture)}× current): no scale-down until {panicUntil:HH:mm:ss}";
            }
            else
            {
                var window = now - TimeSpan.FromSeconds(options.ScaleUpStabilizationSeconds);
                desired = Math.Max(current, recommendations.Where(r => r.At >= window).Min(r => r.Replicas));
                if (desired < raw.Replicas)
                {
                    reason += $"; the {Seconds(options.ScaleUpStabilizationSeconds)} scale-up window's lowest recommendation is {desired}";
                }
            }
            if (desired > current + options.MaxScaleUpStep)
            {
                desired = current + options.MaxScaleUpStep;
                reason += $"; at most {options.MaxScaleUpStep} more per decision";
            }
        }
        else if (raw.Replicas < current)
        {
            var blocked = DownBlocker(options, samples, now, current, panicking, panicUntil);
            if (blocked is not null)
            {
                return (new ScalingDecision(current, current, $"{raw.Why}; {blocked}", panicking, signals, raw.Driver), nextState);
            }
            var window = now - TimeSpan.FromSeconds(options.ScaleDownStabilizationSeconds);
            desired = Math.Min(current, recommendations.Where(r => r.At >= window).Max(r => r.Replicas));
            if (desired > raw.Replicas)
            {
                reason += $"; the {Seconds(options.ScaleDownStabilizationSeconds)} scale-down window's highest recommendation is {desired}";
            }
            if (desired < current - options.MaxScaleDownStep)
            {
                desired = current - options.MaxScaleDownStep;
                reason += $"; at most {options.MaxScaleDownStep} fewer per decision";
            }
        }
        else
        {
            desired = current;
        }

        var floor = ZeroCandidate(options, samples, now) ? 0 : options.MinReplicas;
        if (desired < floor)
        {
            desired = floor;
            reason += $"; minimum {floor}";
        }
        if (desired > options.MaxReplicas)
        {
            desired = options.MaxReplicas;
            reason += $"; maximum {options.MaxReplicas}";
        }
        var driver = raw.Driver;
        if (desired == 0)
        {
            reason = $"idle for {Seconds(options.ScaleToZeroAfterSeconds)}: scaling to zero";
            driver = "idle";
        }
        return (new ScalingDecision(current, desired, reason, panicking, signals, driver), nextState);
    }

    private static ScalingDecision Hold(int current, string reason) => new(current, current, reason, false, null, "none");

    private static ScalingDecision FromZero(ScalingPolicyOptions options, List<MetricSample> samples, DateTimeOffset now)
    {
        var recent = Window(samples, now, options.PanicWindowSeconds);
        var before = samples.LastOrDefault(s => s.At < recent[0].At) ?? recent[0];
        var turnedAway = recent[^1].Unserved - before.Unserved;
        var latest = recent[^1];
        if (turnedAway > 0 || latest.Qps > 0 || latest.Waiting > 0)
        {
            return new ScalingDecision(0, 1, turnedAway > 0
                ? $"{turnedAway} request(s) arrived while scaled to zero: starting one replica"
                : "requests arrive while scaled to zero: starting one replica", false, null, "demand");
        }
        return new ScalingDecision(0, 0, "scaled to zero; no requests", false, null, "none");
    }

    /// <summary>Why the metrics are not good enough to remove a replica, or null when they are.</summary>
    private static string? DownBlocker(ScalingPolicyOptions options, List<MetricSample> samples, DateTimeOffset now, int current, bool panicking, DateTimeOffset panicUntil)
    {
        if (panicking)
        {
            return $"no scale-down while a burst is recent (until {panicUntil:HH:mm:ss})";
        }
        var latest = samples[^1];
        if (latest.Replicas < current)
        {
            return $"no scale-down: only {latest.Replicas} of {current} replicas report metrics";
        }
        var coverage = Coverage(options, samples, now, options.StableWindowSeconds);
        return coverage is null ? null : $"no scale-down: {coverage}";
    }

    /// <summary>
    /// Null when the samples cover the last <paramref name="seconds"/> (one at or before its start, none further apart
    /// than the stale limit); else what is missing. The caller keeps a little more history than its longest window.
    /// </summary>
    private static string? Coverage(ScalingPolicyOptions options, List<MetricSample> samples, DateTimeOffset now, double seconds)
    {
        var start = now - TimeSpan.FromSeconds(seconds);
        var stale = TimeSpan.FromSeconds(options.StaleAfterSeconds);
        if (samples[0].At > start)
        {
            return $"metrics cover {Seconds((now - samples[0].At).TotalSeconds)} of the {Seconds(seconds)} window";
        }
        var previous = start;
        foreach (var sample in samples.Where(s => s.At >= start))
        {
            if (sample.At - previous > stale)
            {
                return $"metrics missing from {previous:HH:mm:ss} to {sample.At:HH:mm:ss}";
            }
            previous = sample.At;
        }
        return null;
    }

    private static bool ZeroCandidate(ScalingPolicyOptions options, List<MetricSample> samples, DateTimeOffset now)
    {
        if (!options.ScaleToZero || Coverage(options, samples, now, options.ScaleToZeroAfterSeconds) is not null)
        {
            return false;
        }
        var span = samples.Where(s => s.At >= now - TimeSpan.FromSeconds(options.ScaleToZeroAfterSeconds)).ToList();
        var before = samples.LastOrDefault(s => s.At < now - TimeSpan.FromSeconds(options.ScaleToZeroAfterSeconds)) ?? span[0];
        return span.All(s => s.IsIdle) && span[^1].Unserved == before.Unserved;
    }

    private static List<MetricSample> Window(List<MetricSample> samples, DateTimeOffset now, double seconds)
    {
        var start = now - TimeSpan.FromSeconds(seconds);
        var window = samples.Where(s => s.At >= start).ToList();
        return window.Count > 0 ? window : [samples[^1]];
    }

    /// <summary>What one metric (the driver) asks for, and why in words.</summary>
    private sealed record Ask(int Replicas, string Driver, string Why);

    private sealed record WindowSignals(ScalingSignals Signals, int Replicas, IReadOnlyList<Ask> Asks);

    private static WindowSignals? Signals(ScalingPolicyOptions options, List<MetricSample> window, int current)
    {
        var reporting = window[^1].Replicas;
        if (reporting == 0)
        {
            return null;
        }
        var waiting = window.Average(s => s.Waiting);
        var running = window.Average(s => s.Running);
        var kv = window.Average(s => s.KvUsage);
        var qps = window.Average(s => s.Qps);
        var asks = new List<Ask>();
        int? byWaiting = null, byKv = null, byQps = null;
        if (options.TargetWaitingPerReplica > 0)
        {
            byWaiting = Want(waiting / reporting, options.TargetWaitingPerReplica, reporting, current, options.Tolerance);
            asks.Add(new Ask(byWaiting.Value, "waiting", $"{F(waiting)} waiting for a target of {F(options.TargetWaitingPerReplica)} per replica asks {byWaiting}"));
        }
        if (options.TargetKvUsage > 0)
        {
            byKv = Want(kv, options.TargetKvUsage, reporting, current, options.Tolerance);
            asks.Add(new Ask(byKv.Value, "kv_usage", $"KV usage {F(kv)} for a target of {F(options.TargetKvUsage)} asks {byKv}"));
        }
        if (options.TargetQpsPerReplica > 0)
        {
            byQps = Want(qps / reporting, options.TargetQpsPerReplica, reporting, current, options.Tolerance);
            asks.Add(new Ask(byQps.Value, "qps", $"{F(qps)} req/s for a target of {F(options.TargetQpsPerReplica)} per replica asks {byQps}"));
        }
        return new WindowSignals(new ScalingSignals(waiting, running, kv, qps, byWaiting, byKv, byQps), asks.Max(a => a.Replicas), asks);
    }

    private static Ask Largest(WindowSignals signals) => signals.Asks.MaxBy(a => a.Replicas)!;

    /// <summary>HPA: ceil(replicas × per-replica value ÷ target), or no change within the tolerance.</summary>
    private static int Want(double perReplica, double target, int reporting, int current, double tolerance)
    {
        var ratio = perReplica / target;
        return Math.Abs(ratio - 1) <= tolerance ? current : (int)Math.Ceiling(reporting * ratio - 1e-9);
    }

    private static string F(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);

    private static string Seconds(double seconds) => $"{seconds.ToString("0.#", CultureInfo.InvariantCulture)} s";
}
