using System.Diagnostics;
using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Builder;

namespace VllmStack.Hosting.Orchestration;

/// <summary>
/// One replica's life: start its process, follow its health, restart it with back-off when it dies on its own,
/// kill it (with its children) when told to stop. Ports stay the same across restarts, so URLs do not move.
/// </summary>
internal sealed class ReplicaRunner
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StableAfter = TimeSpan.FromSeconds(30);

    private readonly IRunnableResource _resource;
    private readonly ResourceRuntime _runtime;
    private readonly ResourceLogs _logs;
    private readonly HttpClient _health;
    private readonly Action _changed;
    private readonly CancellationTokenSource _stop = new();
    private Process? _process;
    private bool _retiring;
    private Task? _loop;
    private int _consecutiveCrashes;

    public ReplicaRunner(IRunnableResource resource, int index, IReadOnlyDictionary<string, int> ports, ResourceRuntime runtime, ResourceLogs logs, HttpClient health, Action changed)
    {
        _resource = resource;
        Index = index;
        Ports = ports;
        _runtime = runtime;
        _logs = logs;
        _health = health;
        _changed = changed;
    }

    public int Index { get; }

    public IReadOnlyDictionary<string, int> Ports { get; }

    public ResourceState State { get; private set; } = ResourceState.NotStarted;

    public HealthStatus Health { get; private set; } = HealthStatus.Unknown;

    public int Restarts { get; private set; }

    public int? ExitCode { get; private set; }

    public DateTimeOffset? StartedAt { get; private set; }

    public string? Message { get; private set; }

    public string? Description { get; private set; }

    public int? ProcessId => _process is { } p && !HasExited(p) ? p.Id : null;

    public ReplicaSnapshot Snapshot() => new(Index, State, Health, ProcessId, Ports, Restarts, ExitCode, StartedAt, Message);

    public void Start() => _loop = Task.Run(() => LoopAsync(_stop.Token));

    /// <summary>Kills the process tree and waits for the loop to end.</summary>
    public async Task StopAsync()
    {
        if (State is not ResourceState.Finished and not ResourceState.FailedToStart)
        {
            Set(ResourceState.Stopping, Health);
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        Kill();
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Retires a replica without failing its requests (scaling down): it has already left the published endpoints, so
    /// after <paramref name="drainDelay"/> routers have stopped sending to it; then SIGTERM lets the program finish what
    /// it is serving (ASP.NET waits for in-flight requests), and only a process still running after
    /// <paramref name="gracePeriod"/> is killed.
    /// </summary>
    public async Task RetireAsync(TimeSpan drainDelay, TimeSpan gracePeriod)
    {
        if (State is not ResourceState.Finished and not ResourceState.FailedToStart)
        {
            Set(ResourceState.Stopping, Health);
        }
        // No restart from here on (the loop sees the flag when the process exits), but no kill either until the grace ends.
        Volatile.Write(ref _retiring, true);
        var process = _process;
        if (process is not null && !HasExited(process))
        {
            await Task.Delay(drainDelay).ConfigureAwait(false);
            if (!HasExited(process) && Terminate(process.Id) == 0)
            {
                try
                {
                    await process.WaitForExitAsync().WaitAsync(gracePeriod).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    _logs.Write(_resource.Name, Index, true, $"did not stop within {gracePeriod.TotalSeconds:F0} s of SIGTERM; killing it");
                }
            }
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        Kill();
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int SendSignal(int pid, int signal);

    /// <summary>SIGTERM (15) to the process; non-zero when it could not be sent (then the caller kills).</summary>
    private static int Terminate(int pid) => OperatingSystem.IsWindows() ? -1 : SendSignal(pid, 15);

    /// <summary>Kills the process as a crash would (tests, the dashboard's "kill"): the loop restarts it.</summary>
    public void KillForRestart() => Kill();

    private async Task LoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Set(ResourceState.Starting, HealthStatus.Unknown);
            var context = new ReplicaContext(_resource, Index, Ports, _runtime);
            LaunchPlan plan;
            Process process;
            try
            {
                plan = LaunchPlanner.Plan(_resource, context);
                process = StartProcess(plan);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Message = e.Message;
                _logs.Write(_resource.Name, Index, true, $"failed to start: {e.Message}");
                Set(ResourceState.FailedToStart, HealthStatus.Unhealthy);
                return;
            }
            _process = process;
            Description = plan.Spec.Description;
            StartedAt = DateTimeOffset.UtcNow;
            ExitCode = null;
            Message = null;
            var hasHealthCheck = _resource.Annotations.Any(a => a is HttpHealthCheckAnnotation or CustomHealthCheckAnnotation);
            Set(ResourceState.Running, hasHealthCheck ? HealthStatus.Unknown : HealthStatus.Healthy);

            using var exited = CancellationTokenSource.CreateLinkedTokenSource(stop);
            var monitor = hasHealthCheck ? MonitorHealthAsync(context, exited.Token) : Task.CompletedTask;
            try
            {
                await process.WaitForExitAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Kill();
                await WaitForExitQuietlyAsync(process).ConfigureAwait(false);
                await exited.CancelAsync().ConfigureAwait(false);
                await monitor.ConfigureAwait(false);
                Set(ResourceState.Finished, HealthStatus.Unknown);
                return;
            }
            await exited.CancelAsync().ConfigureAwait(false);
            await monitor.ConfigureAwait(false);

            ExitCode = process.ExitCode;
            if (Volatile.Read(ref _retiring))
            {
                Set(ResourceState.Finished, HealthStatus.Unknown);
                return;
            }
            _consecutiveCrashes = DateTimeOffset.UtcNow - StartedAt > StableAfter ? 1 : _consecutiveCrashes + 1;
            var delay = TimeSpan.FromSeconds(Math.Min(MaxBackoff.TotalSeconds, Math.Pow(2, _consecutiveCrashes - 1)));
            Restarts++;
            Message = $"exited with code {ExitCode}; restarting in {delay.TotalSeconds:F0} s";
            _logs.Write(_resource.Name, Index, true, Message);
            Set(ResourceState.Exited, HealthStatus.Unhealthy);
            try
            {
                await Task.Delay(delay, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Set(ResourceState.Finished, HealthStatus.Unknown);
                return;
            }
        }
        Set(ResourceState.Finished, HealthStatus.Unknown);
    }

    private Process StartProcess(LaunchPlan plan)
    {
        var info = new ProcessStartInfo(plan.Spec.FileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = plan.Spec.WorkingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var arg in plan.Spec.Arguments)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in plan.Environment)
        {
            info.Environment[key] = value;
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException($"{plan.Spec.FileName} did not start.");
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _logs.Write(_resource.Name, Index, false, e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                _logs.Write(_resource.Name, Index, true, e.Data);
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private async Task MonitorHealthAsync(ReplicaContext context, CancellationToken cancellationToken)
    {
        var http = _resource.Annotations.OfType<HttpHealthCheckAnnotation>().LastOrDefault();
        var custom = _resource.Annotations.OfType<CustomHealthCheckAnnotation>().LastOrDefault();
        while (!cancellationToken.IsCancellationRequested)
        {
            bool healthy;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(2));
                if (http is not null)
                {
                    using var response = await _health.GetAsync(new Uri(context.Url(http.EndpointName), http.Path), timeout.Token).ConfigureAwait(false);
                    healthy = response.IsSuccessStatusCode;
                }
                else
                {
                    healthy = await custom!.Check(context, timeout.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or System.Net.Sockets.SocketException)
            {
                healthy = false;
            }
            if (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            var next = healthy ? HealthStatus.Healthy : HealthStatus.Unhealthy;
            if (next != Health && State == ResourceState.Running)
            {
                Set(State, next);
            }
            try
            {
                await Task.Delay(healthy ? TimeSpan.FromSeconds(2) : TimeSpan.FromMilliseconds(250), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Set(ResourceState state, HealthStatus health)
    {
        State = state;
        Health = health;
        _changed();
    }

    private void Kill()
    {
        var process = _process;
        if (process is null)
        {
            return;
        }
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }

    private static bool HasExited(Process process)
    {
        try
        {
            return process.HasExited;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
    }

    private static async Task WaitForExitQuietlyAsync(Process process)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
