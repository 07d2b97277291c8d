namespace VllmStack.Autoscaler.Actuators;

/// <summary>Reads and sets how many replicas a deployment should run: the AppHost locally, the API server on Kubernetes.</summary>
public interface IReplicaActuator
{
    string Name { get; }

    /// <summary>The replicas the deployment is asked to run (its spec, not how many are ready).</summary>
    Task<int> GetReplicasAsync(string target, CancellationToken cancellationToken);

    Task SetReplicasAsync(string target, int replicas, CancellationToken cancellationToken);
}

/// <summary>A replica count could not be read or set; <see cref="Transient"/> failures are retried at the next interval.</summary>
public sealed class ActuatorException(string message, bool transient, Exception? inner = null) : Exception(message, inner)
{
    public bool Transient { get; } = transient;
}
