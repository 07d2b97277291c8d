namespace VllmStack.Hosting.Orchestration;

/// <summary>Lifecycle states, as Aspire names them; health is tracked separately.</summary>
public enum ResourceState
{
    NotStarted,
    Waiting,
    Starting,
    Running,
    Exited,
    FailedToStart,
    Stopping,
    Finished,
}

public enum HealthStatus
{
    Unknown,
    Healthy,
    Degraded,
    Unhealthy,
}

/// <summary>One process of a resource.</summary>
public sealed record ReplicaSnapshot(
    int Index,
    ResourceState State,
    HealthStatus Health,
    int? ProcessId,
    IReadOnlyDictionary<string, int> Ports,
    int Restarts,
    int? ExitCode,
    DateTimeOffset? StartedAt,
    string? Message);

/// <summary>A resource as the console, the dashboard and the control API show it.</summary>
public sealed record ResourceSnapshot(
    string Name,
    string Kind,
    string Description,
    ResourceState State,
    HealthStatus Health,
    int DesiredReplicas,
    IReadOnlyList<ReplicaSnapshot> Replicas,
    IReadOnlyList<string> Urls,
    IReadOnlyList<string> WaitsFor,
    bool Simulated)
{
    public static ResourceState Aggregate(IReadOnlyList<ReplicaSnapshot> replicas, int desired, bool stopped)
    {
        if (replicas.Count == 0)
        {
            return stopped ? ResourceState.Finished : desired == 0 ? ResourceState.Running : ResourceState.NotStarted;
        }
        foreach (var state in new[] { ResourceState.Running, ResourceState.Starting, ResourceState.NotStarted, ResourceState.Waiting, ResourceState.Stopping, ResourceState.Exited, ResourceState.FailedToStart })
        {
            if (replicas.Any(r => r.State == state))
            {
                // A replica about to launch counts as starting: the resource has been told to run.
                return state == ResourceState.NotStarted ? ResourceState.Starting : state;
            }
        }
        return replicas[0].State;
    }

    public static HealthStatus AggregateHealth(IReadOnlyList<ReplicaSnapshot> replicas, int desired)
    {
        if (desired == 0)
        {
            return HealthStatus.Healthy;
        }
        var healthy = replicas.Count(r => r.Health == HealthStatus.Healthy);
        if (healthy == 0)
        {
            return replicas.Any(r => r.State == ResourceState.Running) ? HealthStatus.Unhealthy : HealthStatus.Unknown;
        }
        return healthy >= desired ? HealthStatus.Healthy : HealthStatus.Degraded;
    }
}
