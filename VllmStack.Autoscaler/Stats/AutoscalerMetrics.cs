using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using VllmStack.Autoscaler.Configuration;
using VllmStack.Autoscaler.Policy;

namespace VllmStack.Autoscaler.Stats;

/// <summary>
/// Each target's last decision as metrics: desired vs current replicas, the window averages it saw, the replicas each
/// metric asked for, whether it panicked; and a counter of decisions by direction and driver.
/// </summary>
public sealed class AutoscalerMetrics : IDisposable
{
    public const string MeterName = "VllmStack.Autoscaler";

    private readonly Meter _meter = new(MeterName);
    private readonly ConcurrentDictionary<string, (ScaleTargetOptions Target, ScalingDecision Decision)> _last = new(StringComparer.Ordinal);
    private readonly Counter<long> _decisions;
    private readonly Counter<long> _failures;

    public AutoscalerMetrics()
    {
        _meter.CreateObservableGauge("vllmstack:autoscaler_desired_replicas", () => Each(d => d.Desired), null, "Replicas the last decision asked for.");
        _meter.CreateObservableGauge("vllmstack:autoscaler_current_replicas", () => Each(d => d.Current), null, "Replicas the deployment was set to when the decision was made.");
        _meter.CreateObservableGauge("vllmstack:autoscaler_panic", () => Each(d => d.Panicking ? 1 : 0), null, "1 while a burst blocks scaling down.");
        _meter.CreateObservableGauge("vllmstack:autoscaler_input", Inputs, null, "Window averages the last decision used: waiting, running, kv_usage, qps.");
        _meter.CreateObservableGauge("vllmstack:autoscaler_metric_replicas", Asks, null, "Replicas each metric asked for in the last decision.");
        _decisions = _meter.CreateCounter<long>("vllmstack:autoscaler_decisions", null, "Decisions by direction (up, down, hold) and driver.");
        _failures = _meter.CreateCounter<long>("vllmstack:autoscaler_failures", null, "Evaluations that could not read load or set replicas, by stage.");
    }

    public void Decided(ScaleTargetOptions target, ScalingDecision decision)
    {
        _last[target.Name] = (target, decision);
        _decisions.Add(1, Labels(target, ("direction", decision.Direction), ("driver", decision.Driver)));
    }

    public void Failed(ScaleTargetOptions? target, string stage) =>
        _failures.Add(1, new KeyValuePair<string, object?>("target", target?.Name ?? ""), new KeyValuePair<string, object?>("stage", stage));

    public IReadOnlyDictionary<string, ScalingDecision> LastDecisions => _last.ToDictionary(p => p.Key, p => p.Value.Decision);

    public void Dispose() => _meter.Dispose();

    private IEnumerable<Measurement<int>> Each(Func<ScalingDecision, int> value) =>
        _last.Values.Select(l => new Measurement<int>(value(l.Decision), Labels(l.Target)));

    private IEnumerable<Measurement<double>> Inputs()
    {
        foreach (var (target, decision) in _last.Values)
        {
            if (decision.Signals is { } s)
            {
                yield return new Measurement<double>(s.Waiting, Labels(target, ("metric", "waiting")));
                yield return new Measurement<double>(s.Running, Labels(target, ("metric", "running")));
                yield return new Measurement<double>(s.KvUsage, Labels(target, ("metric", "kv_usage")));
                yield return new Measurement<double>(s.Qps, Labels(target, ("metric", "qps")));
            }
        }
    }

    private IEnumerable<Measurement<int>> Asks()
    {
        foreach (var (target, decision) in _last.Values)
        {
            if (decision.Signals is not { } s)
            {
                continue;
            }
            foreach (var (metric, ask) in new[] { ("waiting", s.ByWaiting), ("kv_usage", s.ByKvUsage), ("qps", s.ByQps) })
            {
                if (ask is { } replicas)
                {
                    yield return new Measurement<int>(replicas, Labels(target, ("metric", metric)));
                }
            }
        }
    }

    private static KeyValuePair<string, object?>[] Labels(ScaleTargetOptions target, params (string Key, string Value)[] extra) =>
        [new("target", target.Name), new("model", target.Model ?? ""), .. extra.Select(e => new KeyValuePair<string, object?>(e.Key, e.Value))];
}
