using System.Collections.Concurrent;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Eventing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace VllmStack.Hosting.Vllm;

/// <summary>
/// What an engine group does that Aspire does not: it keeps the wanted replicas running (a replica that crashes is
/// started again, with back-off), scales by starting and stopping declared replicas through Aspire's own resource
/// commands — retiring a replica gracefully: out of the routers' lists first, a drain, then a stop —, keeps every
/// router's engine list to the healthy replicas, and shows the group's state in the dashboard.
/// </summary>
public sealed class EngineGroupController
{
    /// <summary>How long a retiring replica stays running after leaving the routers' lists (routers re-read them within a second).</summary>
    public static readonly TimeSpan DrainTime = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan FirstRestartDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaxRestartDelay = TimeSpan.FromSeconds(30);

    private readonly VllmResource _group;
    private readonly Func<int, IResource> _createReplica;
    private readonly List<EngineListFile> _engineLists = [];
    private readonly Lock _lock = new();
    private readonly Dictionary<int, ReplicaView> _replicas = [];
    private readonly HashSet<int> _wanted = [];
    private readonly HashSet<int> _retiring = [];
    private readonly HashSet<int> _stopsSent = [];
    private readonly ConcurrentDictionary<int, TimeSpan> _restartDelay = new();
    private IServiceProvider? _services;
    private ILogger _logger = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    private CancellationToken _stopping;
    private List<Uri>? _lastListed;

    private EngineGroupController(VllmResource group, Func<int, IResource> createReplica)
    {
        _group = group;
        _createReplica = createReplica;
    }

    /// <summary>A replica as the last notification showed it.</summary>
    private sealed record ReplicaView(string? State, HealthStatus? Health, int? ExitCode, Uri? Url);

    /// <summary>The replicas the group is meant to run now (the scaling target), within 0 and the declared replicas.</summary>
    public int DesiredReplicas
    {
        get
        {
            lock (_lock)
            {
                return _wanted.Count;
            }
        }
    }

    /// <summary>The most replicas the group can run: how many are declared.</summary>
    public int MaxReplicas => _group.ReplicaResources.Count;

    public string Name => _group.Name;

    internal static EngineGroupController? Of(VllmResource group) =>
        group.Annotations.OfType<ControllerAnnotation>().FirstOrDefault()?.Controller;

    internal static void Attach(IDistributedApplicationBuilder builder, IResourceBuilder<VllmResource> group, SimulatorFactory? addSimulator)
    {
        var controller = new EngineGroupController(group.Resource, index => ReplicaFactory.Create(builder, group.Resource, index, addSimulator));
        group.WithAnnotation(new ControllerAnnotation(controller));
        builder.Services.TryAddEngineGroupRegistry().Add(controller);
        EnsureReplicas(group, 1);
        // Before the start, not after the resources are created: a router waiting for the group would hold that event back.
        builder.Eventing.Subscribe<BeforeStartEvent>((e, _) =>
        {
            controller.Start(e.Services);
            return Task.CompletedTask;
        });
        group
            .WithCommand("scale-up", "Add a replica", async context =>
                await controller.ScaleAsync(controller.DesiredReplicas + 1, context.CancellationToken).ConfigureAwait(false),
                new CommandOptions { IconName = "Add", Description = "Start one more engine replica (up to the declared replicas)." })
            .WithCommand("scale-down", "Retire a replica", async context =>
                await controller.ScaleAsync(controller.DesiredReplicas - 1, context.CancellationToken).ConfigureAwait(false),
                new CommandOptions { IconName = "Subtract", Description = "Take a replica out of the routers, let it drain, and stop it." })
            .WithCommand("sleep", "Sleep", context => controller.PostToReplicasAsync("sleep?level=1", context.CancellationToken),
                new CommandOptions { IconName = "WeatherMoon", Description = "vLLM's /sleep (level 1) on every running replica: weights offloaded, KV cache freed." })
            .WithCommand("wake-up", "Wake up", context => controller.PostToReplicasAsync("wake_up", context.CancellationToken),
                new CommandOptions { IconName = "WeatherSunny", Description = "vLLM's /wake_up on every running replica." });
    }

    /// <summary>Declares replicas up to <paramref name="count"/>; those at or past the group's start count wait to be started.</summary>
    internal static void EnsureReplicas(IResourceBuilder<VllmResource> group, int count)
    {
        if (Of(group.Resource) is not { } controller)
        {
            return;
        }
        for (var index = group.Resource.ReplicaResources.Count; index < count; index++)
        {
            group.Resource.AddReplica(controller._createReplica(index));
        }
        for (var index = 0; index < group.Resource.ReplicaResources.Count; index++)
        {
            var replica = group.Resource.ReplicaResources[index];
            var explicitStart = replica.Annotations.OfType<ExplicitStartupAnnotation>().FirstOrDefault();
            if (index < group.Resource.Replicas && explicitStart is not null)
            {
                replica.Annotations.Remove(explicitStart);
            }
            else if (index >= group.Resource.Replicas && explicitStart is null)
            {
                replica.Annotations.Add(new ExplicitStartupAnnotation());
            }
        }
    }

    /// <summary>A router file that lists the group's healthy replicas (beside other groups' ones), kept current.</summary>
    internal void AddEngineList(EngineListFile file)
    {
        file.AddGroup(Name);
        lock (_lock)
        {
            _engineLists.Add(file);
        }
    }

    private void Start(IServiceProvider services)
    {
        _services = services;
        _logger = services.GetRequiredService<ResourceLoggerService>().GetLogger(_group);
        _stopping = services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        lock (_lock)
        {
            for (var index = 0; index < Math.Min(_group.Replicas, _group.ReplicaResources.Count); index++)
            {
                _wanted.Add(index);
            }
        }
        WriteEngineLists();
        _ = WatchAsync(services.GetRequiredService<ResourceNotificationService>());
        _stopping.Register(DeleteEngineLists);
    }

    /// <summary>
    /// Runs <paramref name="replicas"/> replicas and waits until the change is made; see <see cref="SetDesiredReplicas"/>.
    /// Cancelling stops the wait, never the change: a half-made change would leave replicas out of the routers' lists
    /// but still running.
    /// </summary>
    public Task<ExecuteCommandResult> ScaleAsync(int replicas, CancellationToken cancellationToken) =>
        SetDesiredReplicas(replicas).WaitAsync(cancellationToken);

    /// <summary>
    /// Sets the replicas the group runs (clamped to 0 … <see cref="MaxReplicas"/>) at once, as a Deployment's scale
    /// subresource does, and makes the change on the application's lifetime: it starts the lowest-numbered stopped
    /// replicas — a retiring one that still runs is simply kept —, or retires the highest-numbered running ones: out of
    /// the routers' lists, <see cref="DrainTime"/> to finish what they serve, then Aspire's stop (SIGTERM, and a kill if
    /// the process does not end). The task ends when the change is made; failures are logged and in its result.
    /// </summary>
    /// <exception cref="InvalidOperationException">The application has not started.</exception>
    public Task<ExecuteCommandResult> SetDesiredReplicas(int replicas)
    {
        var commands = _services?.GetRequiredService<ResourceCommandService>()
            ?? throw new InvalidOperationException($"Engine group '{Name}' has not started.");
        replicas = Math.Clamp(replicas, 0, MaxReplicas);
        List<int> kept;
        List<int> start;
        List<int> retire;
        lock (_lock)
        {
            var missing = Math.Max(0, replicas - _wanted.Count);
            kept = [.. _retiring.Order().Take(missing)];
            start = [.. Enumerable.Range(0, MaxReplicas).Where(i => !_wanted.Contains(i) && !_retiring.Contains(i)).Take(missing - kept.Count)];
            retire = [.. _wanted.OrderDescending().Take(Math.Max(0, _wanted.Count - replicas))];
            _retiring.ExceptWith(kept);
            _wanted.UnionWith(kept);
            _wanted.UnionWith(start);
            _wanted.ExceptWith(retire);
            _retiring.UnionWith(retire);
        }
        if (kept.Count + start.Count + retire.Count > 0)
        {
            _logger.LogInformation("Scaling engine group {Group} to {Replicas} replicas: starting {Start}, keeping {Kept}, retiring {Retire}",
                Name, replicas, string.Join(", ", start.Select(_group.ReplicaName)), string.Join(", ", kept.Select(_group.ReplicaName)),
                string.Join(", ", retire.Select(_group.ReplicaName)));
        }
        WriteEngineLists();
        return ApplyAsync(commands, replicas, start, retire);
    }

    private async Task<ExecuteCommandResult> ApplyAsync(ResourceCommandService commands, int replicas, List<int> start, List<int> retire)
    {
        var failures = new List<string>();
        try
        {
            await PublishStateAsync().ConfigureAwait(false);
            foreach (var index in start)
            {
                _restartDelay.TryRemove(index, out _);
                var result = await commands.ExecuteCommandAsync(_group.ReplicaResources[index], KnownResourceCommands.StartCommand, _stopping).ConfigureAwait(false);
                if (!result.Success)
                {
                    failures.Add($"{_group.ReplicaName(index)}: {result.Message}");
                }
            }
            if (retire.Count > 0)
            {
                // Routers drop the retiring replicas from their lists within a second; what they already sent finishes.
                await Task.Delay(DrainTime, _stopping).ConfigureAwait(false);
                foreach (var index in retire)
                {
                    lock (_lock)
                    {
                        if (!_retiring.Contains(index))
                        {
                            continue; // wanted again while it drained
                        }
                        _stopsSent.Add(index);
                    }
                    var result = await commands.ExecuteCommandAsync(_group.ReplicaResources[index], KnownResourceCommands.StopCommand, _stopping).ConfigureAwait(false);
                    if (!result.Success)
                    {
                        failures.Add($"{_group.ReplicaName(index)}: {result.Message}");
                    }
                }
            }
            await PublishStateAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            return CommandResults.Failure("The application is stopping.");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Nobody may be awaiting this change (the scaling API does not): the log is where it must show.
            failures.Add(e.Message);
        }
        if (failures.Count == 0)
        {
            return CommandResults.Success();
        }
        var message = $"Scaling {Name} to {replicas}: {string.Join("; ", failures)}";
        _logger.LogWarning("{Message}", message);
        return CommandResults.Failure(message);
    }

    /// <summary>POSTs to a vLLM route on every running replica (sleep mode's <c>/sleep</c> and <c>/wake_up</c>).</summary>
    private async Task<ExecuteCommandResult> PostToReplicasAsync(string path, CancellationToken cancellationToken)
    {
        var urls = HealthyUrls(includeRetiring: true);
        if (urls.Count == 0)
        {
            return CommandResults.Failure($"No replica of {Name} is running.");
        }
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var failures = new List<string>();
        foreach (var url in urls)
        {
            try
            {
                using var response = await http.PostAsync(new Uri(url, path), null, cancellationToken).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                {
                    failures.Add($"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                failures.Add($"{url}: {e.Message}");
            }
        }
        return failures.Count == 0 ? CommandResults.Success() : CommandResults.Failure(string.Join("; ", failures));
    }

    private async Task WatchAsync(ResourceNotificationService notifications)
    {
        try
        {
            await foreach (var update in notifications.WatchAsync(_stopping).ConfigureAwait(false))
            {
                if (update.Resource.Annotations.OfType<VllmReplicaAnnotation>().FirstOrDefault() is not { } replica || replica.Group != _group)
                {
                    continue;
                }
                var endpoint = ((IResourceWithEndpoints)update.Resource).GetEndpoint("http");
                var view = new ReplicaView(update.Snapshot.State?.Text, update.Snapshot.HealthStatus, update.Snapshot.ExitCode,
                    endpoint.IsAllocated ? new Uri(endpoint.Url.TrimEnd('/') + "/") : null);
                ReplicaView? before;
                lock (_lock)
                {
                    _replicas.TryGetValue(replica.Index, out before);
                    _replicas[replica.Index] = view;
                }
                if (view.Health == HealthStatus.Healthy)
                {
                    _restartDelay.TryRemove(replica.Index, out _);
                }
                if (IsEnded(view.State) && !IsEnded(before?.State))
                {
                    OnEnded(replica.Index, view);
                }
                WriteEngineLists();
                await PublishStateAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    private static bool IsEnded(string? state) =>
        state == KnownResourceStates.Exited || state == KnownResourceStates.Finished || state == KnownResourceStates.FailedToStart;

    /// <summary>
    /// A replica that should run ended. A clean stop (exit 0, as Aspire's stop ends it) is taken as meant — the user
    /// stopped it in the dashboard — and the group runs one fewer; anything else is a crash, started again after a
    /// back-off that doubles up to <see cref="MaxRestartDelay"/> (Aspire restarts no executable by itself).
    /// </summary>
    private void OnEnded(int index, ReplicaView view)
    {
        lock (_lock)
        {
            _retiring.Remove(index);
            var stopped = _stopsSent.Remove(index);
            if (!_wanted.Contains(index))
            {
                return;
            }
            if (stopped)
            {
                // Wanted again after we stopped it: start it again at once.
                _logger.LogInformation("Replica {Replica} was retired but is wanted again; starting it", _group.ReplicaName(index));
                _ = RestartAsync(index, TimeSpan.Zero);
                return;
            }
            if (view.ExitCode == 0 && view.State != KnownResourceStates.FailedToStart)
            {
                _wanted.Remove(index);
                _logger.LogInformation("Replica {Replica} was stopped; {Group} now runs {Count}", _group.ReplicaName(index), Name, _wanted.Count);
                return;
            }
        }
        var delay = _restartDelay.AddOrUpdate(index, FirstRestartDelay, (_, last) => TimeSpan.FromTicks(Math.Min(MaxRestartDelay.Ticks, last.Ticks * 2)));
        _logger.LogWarning("Replica {Replica} ended ({State}, exit code {ExitCode}); starting it again in {Delay:F0} s",
            _group.ReplicaName(index), view.State, view.ExitCode, delay.TotalSeconds);
        _ = RestartAsync(index, delay);
    }

    private async Task RestartAsync(int index, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _stopping).ConfigureAwait(false);
            lock (_lock)
            {
                if (!_wanted.Contains(index) || !IsEnded(_replicas.GetValueOrDefault(index)?.State))
                {
                    return;
                }
            }
            var commands = _services!.GetRequiredService<ResourceCommandService>();
            var result = await commands.ExecuteCommandAsync(_group.ReplicaResources[index], KnownResourceCommands.StartCommand, _stopping).ConfigureAwait(false);
            if (!result.Success)
            {
                _logger.LogWarning("Could not start {Replica} again: {Message}", _group.ReplicaName(index), result.Message);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    private List<Uri> HealthyUrls(bool includeRetiring = false)
    {
        lock (_lock)
        {
            return [.. _replicas
                .Where(r => r.Value is { State: var state, Health: HealthStatus.Healthy, Url: not null } && state == KnownResourceStates.Running
                    && (includeRetiring || !_retiring.Contains(r.Key)))
                .OrderBy(r => r.Key)
                .Select(r => r.Value.Url!)];
        }
    }

    /// <summary>Updates each router's list when the healthy replicas change.</summary>
    private void WriteEngineLists()
    {
        var urls = HealthyUrls();
        lock (_lock)
        {
            if (_lastListed is not null && urls.SequenceEqual(_lastListed))
            {
                return;
            }
            foreach (var file in _engineLists)
            {
                file.Update(Name, urls);
            }
            _lastListed = urls;
        }
    }

    private void DeleteEngineLists()
    {
        lock (_lock)
        {
            foreach (var file in _engineLists)
            {
                file.Delete();
            }
        }
    }

    private Task PublishStateAsync()
    {
        if (_services is null)
        {
            return Task.CompletedTask;
        }
        int running;
        int wanted;
        lock (_lock)
        {
            wanted = _wanted.Count;
            running = _replicas.Count(r => r.Value.State == KnownResourceStates.Running && r.Value.Health == HealthStatus.Healthy);
        }
        var state = wanted == 0 ? new ResourceStateSnapshot("Scaled to zero", KnownResourceStateStyles.Info)
            : running > 0 ? new ResourceStateSnapshot(KnownResourceStates.Running, KnownResourceStateStyles.Success)
            : new ResourceStateSnapshot(KnownResourceStates.Starting, KnownResourceStateStyles.Info);
        return _services.GetRequiredService<ResourceNotificationService>().PublishUpdateAsync(_group, snapshot => snapshot with
        {
            State = state,
            Properties = [.. snapshot.Properties.Where(p => p.Name is not ("vllm.replicas" or "vllm.max_replicas")),
                new("vllm.replicas", $"{running} healthy of {wanted} wanted"), new("vllm.max_replicas", MaxReplicas.ToString(System.Globalization.CultureInfo.InvariantCulture))],
        });
    }

    private sealed record ControllerAnnotation(EngineGroupController Controller) : IResourceAnnotation;
}

/// <summary>The engine groups of an application, for the scaling API and tests.</summary>
public sealed class EngineGroupRegistry
{
    private readonly ConcurrentDictionary<string, EngineGroupController> _groups = new(StringComparer.Ordinal);

    public void Add(EngineGroupController controller) => _groups[controller.Name] = controller;

    public EngineGroupController? Find(string name) => _groups.GetValueOrDefault(name);

    public IReadOnlyCollection<EngineGroupController> All => [.. _groups.Values];
}

public static class EngineGroupRegistryServices
{
    /// <summary>The application's engine group registry (one per application, added on first use).</summary>
    public static EngineGroupRegistry TryAddEngineGroupRegistry(this IServiceCollection services)
    {
        if (services.FirstOrDefault(d => d.ServiceType == typeof(EngineGroupRegistry))?.ImplementationInstance is EngineGroupRegistry registry)
        {
            return registry;
        }
        registry = new EngineGroupRegistry();
        services.AddSingleton(registry);
        return registry;
    }
}
