using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Builder;

namespace VllmStack.Hosting.Orchestration;

/// <summary>
/// Keeps one resource at its desired replica count: waits for its dependencies, then starts, scales, stops and
/// restarts replicas, and publishes the resource's snapshot after every change.
/// </summary>
internal sealed class ResourceSupervisor
{
    private readonly IRunnableResource _resource;
    private readonly ResourceRuntime _runtime;
    private readonly ResourceLogs _logs;
    private readonly PortAllocator _ports;
    private readonly DistributedApplicationOptions _options;
    private readonly HttpClient _health;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<ReplicaRunner> _replicas = [];
    // Scaled-down replicas still draining: a shutdown stops them too, so none outlives the application.
    private readonly HashSet<ReplicaRunner> _retiring = [];
    private int _desired;
    private bool _stopped;
    private bool _shutDown;
    private bool _waiting;
    private string? _message;

    public ResourceSupervisor(IRunnableResource resource, ResourceRuntime runtime, ResourceLogs logs, PortAllocator ports, DistributedApplicationOptions options, HttpClient health)
    {
        _resource = resource;
        _runtime = runtime;
        _logs = logs;
        _ports = ports;
        _options = options;
        _health = health;
        _desired = resource.Replicas();
    }

    public IRunnableResource Resource => _resource;

    public IReadOnlyList<IResource> Dependencies => [.. _resource.Annotations.OfType<WaitAnnotation>().Select(w => w.Resource)];

    public void PublishInitial() => Publish();

    /// <summary>Waits for the dependencies to be healthy, then starts the desired replicas.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _waiting = Dependencies.Count > 0;
        Publish();
        foreach (var dependency in Dependencies)
        {
            var snapshot = await _runtime.WaitForAsync(dependency.Name,
                s => (s.State == ResourceState.Running && s.Health == HealthStatus.Healthy) || s.State == ResourceState.FailedToStart, cancellationToken).ConfigureAwait(false);
            if (snapshot.State == ResourceState.FailedToStart)
            {
                _waiting = false;
                _message = $"dependency '{dependency.Name}' failed to start";
                _logs.Write(_resource.Name, 0, true, _message);
                _stopped = true;
                Publish(ResourceState.FailedToStart);
                return;
            }
        }
        _waiting = false;
        if (_resource is IPreparedResource prepared)
        {
            try
            {
                await prepared.PrepareAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                _message = e.Message;
                _logs.Write(_resource.Name, 0, true, e.Message);
                _stopped = true;
                Publish(ResourceState.FailedToStart);
                return;
            }
        }
        await ScaleAsync(_desired).ConfigureAwait(false);
    }

    public async Task ScaleAsync(int replicas)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(replicas);
        List<ReplicaRunner> removed = [];
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_shutDown)
            {
                // A late control call (an autoscaler, the dashboard) after the application stopped starts nothing.
                return;
            }
            _desired = replicas;
            _stopped = false;
            while (_replicas.Count < replicas)
            {
                var replica = new ReplicaRunner(_resource, NextIndex(), AllocatePorts(), _runtime, _logs, _health, () => Publish());
                lock (_replicas)
                {
                    _replicas.Add(replica);
                }
                replica.Start();
            }
            while (_replicas.Count > replicas)
            {
                var last = _replicas.MaxBy(r => r.Index)!;
                lock (_replicas)
                {
                    _replicas.Remove(last);
                }
                removed.Add(last);
                lock (_retiring)
                {
                    _retiring.Add(last);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
        Publish();
        // Removed replicas left the published endpoints just now; they drain before they stop.
        await Task.WhenAll(removed.Select(RetireAsync)).ConfigureAwait(false);
        Publish();
    }

    private async Task RetireAsync(ReplicaRunner replica)
    {
        try
        {
            await replica.RetireAsync(DrainDelay, GracePeriod).ConfigureAwait(false);
        }
        finally
        {
            lock (_retiring)
            {
                _retiring.Remove(replica);
            }
        }
    }

    /// <summary>Stops every replica, draining ones too, for good: later scaling calls are ignored.</summary>
    public async Task ShutdownAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        _shutDown = true;
        _gate.Release();
        await StopAsync().ConfigureAwait(false);
    }

    /// <summary>Time for routers to notice a replica left the endpoint list (their dynamic config is polled every 0.5 s).</summary>
    private static readonly TimeSpan DrainDelay = TimeSpan.FromSeconds(2);

    /// <summary>How long a retiring replica may take to finish its requests after SIGTERM.</summary>
    private static readonly TimeSpan GracePeriod = TimeSpan.FromSeconds(30);

    public async Task StopAsync()
    {
        List<ReplicaRunner> all;
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            lock (_replicas)
            {
                all = [.. _replicas];
                _replicas.Clear();
            }
            lock (_retiring)
            {
                all.AddRange(_retiring);
            }
            _stopped = true;
        }
        finally
        {
            _gate.Release();
        }
        await Task.WhenAll(all.Select(r => r.StopAsync())).ConfigureAwait(false);
        Publish();
    }

    public async Task RestartAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await ScaleAsync(_desired).ConfigureAwait(false);
    }

    /// <summary>Kills one replica's process as a crash would; its runner restarts it.</summary>
    public bool KillReplica(int index)
    {
        ReplicaRunner? replica;
        lock (_replicas)
        {
            replica = _replicas.FirstOrDefault(r => r.Index == index);
        }
        replica?.KillForRestart();
        return replica is not null;
    }

    private int NextIndex()
    {
        var index = 0;
        while (_replicas.Any(r => r.Index == index))
        {
            index++;
        }
        return index;
    }

    private Dictionary<string, int> AllocatePorts()
    {
        var ports = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var endpoint in _resource.Annotations.OfType<EndpointAnnotation>())
        {
            // A fixed port belongs to the first replica; others (and every replica in tests) get free ports.
            var fixedPort = endpoint.Port is { } port && !_options.RandomizePorts && !_replicas.Any(r => r.Ports.GetValueOrDefault(endpoint.Name) == port);
            ports[endpoint.Name] = fixedPort ? endpoint.Port!.Value : _ports.Allocate();
        }
        return ports;
    }

    private void Publish(ResourceState? forced = null)
    {
        ReplicaSnapshot[] replicas;
        string description;
        lock (_replicas)
        {
            replicas = [.. _replicas.Select(r => r.Snapshot()).OrderBy(r => r.Index)];
            description = _replicas.Select(r => r.Description).FirstOrDefault(d => d is not null) ?? _resource.KindDescription;
        }
        var state = forced ?? (_waiting ? ResourceState.Waiting : ResourceSnapshot.Aggregate(replicas, _desired, _stopped));
        var urls = replicas
            .SelectMany(r => _resource.Annotations.OfType<EndpointAnnotation>().Where(e => r.Ports.ContainsKey(e.Name)).Select(e => $"{e.Scheme}://localhost:{r.Ports[e.Name]}"))
            .ToList();
        var simulated = _resource is Vllm.VllmResource vllm && vllm.Mode == Vllm.EngineMode.Simulated;
        if (_message is not null && replicas.Length == 0)
        {
            replicas = [new ReplicaSnapshot(0, ResourceState.FailedToStart, HealthStatus.Unhealthy, null, new Dictionary<string, int>(), 0, null, null, _message)];
        }
        _runtime.Publish(new ResourceSnapshot(_resource.Name, _resource.GetType().Name.Replace("Resource", "", StringComparison.Ordinal), description,
            state, ResourceSnapshot.AggregateHealth(replicas, _desired), _desired, replicas, urls,
            [.. Dependencies.Select(d => d.Name)], simulated));
    }
}
