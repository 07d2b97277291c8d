using VllmStack.Autoscaler.Actuators;
using VllmStack.Autoscaler.Configuration;
using VllmStack.Autoscaler.Inputs;
using VllmStack.Autoscaler.Policy;
using VllmStack.Autoscaler.Stats;

namespace VllmStack.Autoscaler.Scaling;

/// <summary>
/// Every interval: one read of the router's view, then per target the replicas the actuator reports, the policy's
/// decision on the metric history, and — when it differs — the new replica count. A failed read or actuator call
/// skips that target's decision (no data is no reason to scale); changes are logged at Information with their reason,
/// a hold whenever its reason changes.
/// </summary>
public sealed partial class ScalingLoop(
    AutoscalerOptions options, RouterLoadReader reader, IReplicaActuator actuator, AutoscalerMetrics metrics, TimeProvider time, ILogger<ScalingLoop> logger)
    : BackgroundService
{
    private sealed class TargetTrack
    {
        public List<MetricSample> History { get; } = [];

        public ScalingState State { get; set; } = ScalingState.Initial;

        public string? LastReason { get; set; }
    }

    private readonly Dictionary<string, TargetTrack> _tracks = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        LogStarted(actuator.Name, new Uri(reader.Router, "engines"), options.Targets.Count, options.IntervalSeconds);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.IntervalSeconds), time);
        do
        {
            await EvaluateAsync(stoppingToken).ConfigureAwait(false);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private async Task EvaluateAsync(CancellationToken cancellationToken)
    {
        RouterView? view = null;
        try
        {
            view = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or System.Text.Json.JsonException or KeyNotFoundException or InvalidOperationException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            metrics.Failed(null, "read");
            LogReadFailed(reader.Router, e.Message);
        }
        foreach (var target in options.Targets)
        {
            await EvaluateAsync(target, view, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task EvaluateAsync(ScaleTargetOptions target, RouterView? view, CancellationToken cancellationToken)
    {
        if (!_tracks.TryGetValue(target.Name, out var track))
        {
            _tracks[target.Name] = track = new TargetTrack();
        }
        var policy = target.Policy;
        var now = view?.At ?? time.GetUtcNow();
        if (view is not null)
        {
            track.History.Add(RouterLoadReader.Sample(view, target.Model, TimeSpan.FromSeconds(policy.StaleAfterSeconds)));
        }
        // Keep a little more than the longest window the policy looks back over.
        var keep = TimeSpan.FromSeconds(Math.Max(policy.StableWindowSeconds, policy.ScaleToZero ? policy.ScaleToZeroAfterSeconds : 0) + policy.StaleAfterSeconds + 2 * options.IntervalSeconds);
        track.History.RemoveAll(s => s.At < now - keep);

        int current;
        try
        {
            current = await actuator.GetReplicasAsync(target.Name, cancellationToken).ConfigureAwait(false);
        }
        catch (ActuatorException e)
        {
            metrics.Failed(target, "get");
            LogActuatorFailed(target.Label, "read", e.Message);
            return;
        }
        var (decision, state) = ScalingPolicy.Decide(policy, track.History, current, now, track.State);
        track.State = state;
        metrics.Decided(target, decision);
        if (decision.Desired == current)
        {
            if (decision.Reason != track.LastReason)
            {
                LogHold(target.Label, current, decision.Reason);
            }
            track.LastReason = decision.Reason;
            return;
        }
        track.LastReason = null;
        try
        {
            await actuator.SetReplicasAsync(target.Name, decision.Desired, cancellationToken).ConfigureAwait(false);
            LogScaled(target.Label, current, decision.Desired, decision.Reason);
        }
        catch (ActuatorException e)
        {
            metrics.Failed(target, "set");
            LogActuatorFailed(target.Label, $"set to {decision.Desired} replicas", e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Autoscaler ({Actuator}) reading {Engines} for {Targets} target(s) every {Interval} s")]
    private partial void LogStarted(string actuator, Uri engines, int targets, double interval);

    [LoggerMessage(Level = LogLevel.Information, Message = "Scaling {Target} from {Current} to {Desired} replicas: {Reason}")]
    private partial void LogScaled(string target, int current, int desired, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Holding {Target} at {Current} replicas: {Reason}")]
    private partial void LogHold(string target, int current, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not read load from the router at {Router}: {Reason}; no new samples until it answers")]
    private partial void LogReadFailed(Uri router, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not {Action} for {Target}: {Reason}")]
    private partial void LogActuatorFailed(string target, string action, string reason);
}
