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
    private Func<IResource, string, Uri>? _publishedEndpoint;

    /// <summary>
    /// The view the publisher evaluates the model in: an endpoint is its Service's DNS address, and a parameter is a
    /// <c>$(PARAMETER_…)</c> reference that the pod's environment resolves (from the ConfigMap or Secret holding it).
    /// </summary>
    internal static ResourceRuntime ForPublishing(IConfiguration configuration, Func<IResource, string, Uri> serviceEndpoint) =>
        new(configuration) { _publishedEndpoint = serviceEndpoint };

    /// <summary>True while the publisher evaluates the model (no process runs).</summary>
    public bool IsPublishing => _publishedEndpoint is not null;

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
        if (_publishedEndpoint is not null)
        {
            return [_publishedEndpoint(resource, endpoint)];
        }
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

    public string ParameterValue(ParameterResource parameter)
    {
        if (IsPublishing)
        {
            return ParameterReference.Of(parameter);
        }
        var key = parameter.ConfigurationKey;
        return configuration[key] is { Length: > 0 } value
            ? value
            : parameter.DefaultValue ?? throw new InvalidOperationException(
                $"Parameter '{parameter.Name}' has no value: set {key} (e.g. --{key}=… or {key.Replace(":", "__", StringComparison.Ordinal)}=…).");
    }

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
