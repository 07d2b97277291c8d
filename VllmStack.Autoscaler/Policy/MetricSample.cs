namespace VllmStack.Autoscaler.Policy;

/// <summary>
/// One reading of a model's engines at <see cref="At"/>: how many replicas reported, their waiting and running
/// requests (summed), their mean KV cache usage, the router's request rate for the model, and how many requests the
/// router has so far turned away for want of an engine (a running count: its growth is demand while at zero).
/// </summary>
public sealed record MetricSample(DateTimeOffset At, int Replicas, double Waiting, double Running, double KvUsage, double Qps, long Unserved)
{
    /// <summary>Nothing running, queued or arriving.</summary>
    public bool IsIdle => Waiting <= 0 && Running <= 0 && Qps <= 0;
}
