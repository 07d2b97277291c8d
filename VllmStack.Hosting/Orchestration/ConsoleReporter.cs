namespace VllmStack.Hosting.Orchestration;

/// <summary>Aspire-style console output: the dashboard URL, then a line whenever a resource's state, health or URLs change.</summary>
internal sealed class ConsoleReporter : IDisposable
{
    private readonly ResourceRuntime _runtime;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, string> _last = [];

    public ConsoleReporter(ResourceRuntime runtime)
    {
        _runtime = runtime;
        runtime.Changed += OnChanged;
    }

    public void Announce(Uri dashboard)
    {
        lock (_lock)
        {
            Console.WriteLine($"Dashboard: {dashboard}");
        }
    }

    private void OnChanged(ResourceSnapshot snapshot)
    {
        var replicas = snapshot.DesiredReplicas == 1 ? "" : $" {snapshot.Replicas.Count(r => r.State == ResourceState.Running)}/{snapshot.DesiredReplicas} replicas";
        var urls = snapshot.Urls.Count == 0 ? "" : "  " + string.Join(" ", snapshot.Urls);
        var line = $"{snapshot.Name,-10} {snapshot.State,-13} {snapshot.Health,-9}{replicas}{urls}  [{snapshot.Description}]";
        lock (_lock)
        {
            if (_last.GetValueOrDefault(snapshot.Name) == line)
            {
                return;
            }
            _last[snapshot.Name] = line;
            Console.WriteLine($"{DateTime.Now:HH:mm:ss} {line}");
        }
    }

    public void Dispose() => _runtime.Changed -= OnChanged;
}
