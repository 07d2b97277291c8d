using System.Collections.Concurrent;
using Microsoft.Extensions.Configuration;
using VllmStack.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Orchestration;

/// <summary>
/// The running application as data: each resource's snapshot (state, health, replicas, ports), parameter values,
/// and waits on conditions. Every reader — console, dashboard, control API, tests — sees the same view.
/// </summary>
public sealed class ResourceRuntime(IConfiguration configuration)
{
    private readonly ConcurrentDictionary<string, ResourceSnapshot> _snapshots = new(StringComparer.Ordinal);

    public event Action<ResourceSnapshot>? Changed;

    public IReadOnlyList<ResourceSnapshot> Snapshots => [.. _snapshots.Values.OrderBy(s => s.Name, StringComparer.Ordinal)];

    public ResourceSnapshot? Get(string name) => _snapshots.GetValueOrDefault(name);

    /// <summary>Where the control API listens, once started (null when nothing needs it).</summary>
    public Uri? ControlApi { get; internal set; }

    internal void Publish(ResourceSnapshot snapshot)
    {
        _snapshots[snapshot.Name] = snapshot;
        Changed?.Invoke(snapshot);
    }

    /// <summary>URLs of the endpoint on every replica that has a process (starting or running).</summary>
    public IReadOnlyList<Uri> Endpoints(IResource resource, string endpoint = "http")
    {
        var scheme = resource.Annotations.OfType<EndpointAnnotation>().FirstOrDefault(e => e.Name == endpoint)?.Scheme ?? "http";
        var snapshot = Get(resource.Name);
        if (snapshot is null)
        {
            return [];
        }
        return [.. snapshot.Replicas
            .Where(r => r.State is ResourceState.Starting or ResourceState.Running && r.Ports.ContainsKey(endpoint))
            .OrderBy(r => r.Index)
            .Select(r => new Uri($"{scheme}://127.0.0.1:{r.Ports[endpoint]}"))];
    }

    /// <summary>A setting of the AppHost's own configuration (environment, command line).</summary>
    public string? Setting(string key) => configuration[key];

    public string ParameterValue(ParameterResource parameter) =>
        configuration[$"Parameters:{parameter.Name}"] is { Length: > 0 } value
            ? value
            : parameter.DefaultValue ?? throw new InvalidOperationException(
                $"Parameter '{parameter.Name}' has no value: set Parameters:{parameter.Name} (e.g. --Parameters:{parameter.Name}=… or Parameters__{parameter.Name}=…).");

    /// <summary>Completes when the resource's snapshot satisfies <paramref name="condition"/>.</summary>
    public async Task<ResourceSnapshot> WaitForAsync(string name, Func<ResourceSnapshot, bool> condition, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource<ResourceSnapshot>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnChanged(ResourceSnapshot snapshot)
        {
            if (snapshot.Name == name && condition(snapshot))
            {
                done.TrySetResult(snapshot);
            }
        }
        Changed += OnChanged;
        try
        {
            if (Get(name) is { } current && condition(current))
            {
                return current;
            }
            return await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Changed -= OnChanged;
        }
    }

    public Task<ResourceSnapshot> WaitForHealthyAsync(string name, CancellationToken cancellationToken) =>
        WaitForAsync(name, s => s.State == ResourceState.Running && s.Health == HealthStatus.Healthy, cancellationToken);
}
