using System.Runtime.InteropServices;
using Microsoft.Extensions.Configuration;
using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Builder;
using VllmStack.Hosting.Dashboard;
using VllmStack.Hosting.Vllm;

namespace VllmStack.Hosting.Orchestration;

/// <summary>
/// The application in run mode: starts every resource in dependency order (each waits for what it needs),
/// keeps replicas alive, serves the dashboard and control API, and on Ctrl-C / SIGTERM stops everything it started.
/// </summary>
public sealed class DistributedApplication : IAsyncDisposable
{
    private readonly DistributedApplicationBuilder _builder;
    private readonly Dictionary<string, ResourceSupervisor> _supervisors = new(StringComparer.Ordinal);
    private readonly HttpClient _health = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(2), UseProxy = false });
    private readonly CancellationTokenSource _lifetime = new();
    private DashboardServer? _dashboard;
    private ConsoleReporter? _console;
    private bool _started;
    private int _stopped;

    /// <summary>Aspire's entry point: the builder for an AppHost's <c>Program</c>.</summary>
    /// Run-mode settings come from configuration section <c>Hosting</c> (<c>--Hosting:DashboardUrl=…</c>,
    /// <c>--Hosting:RandomizePorts=true</c>).
    public static DistributedApplicationBuilder CreateBuilder(string[] args)
    {
        var entry = System.Reflection.Assembly.GetEntryAssembly() ?? throw new InvalidOperationException("No entry assembly: use the testing builder outside an AppHost.");
        DistributedApplicationBuilder builder;
        try
        {
            builder = new DistributedApplicationBuilder(args, new DistributedApplicationOptions(), entry);
        }
        catch (Publishing.PublishArgumentException e)
        {
            // A command-line mistake: say what is wrong and how the command goes, without a stack trace.
            Console.Error.WriteLine(e.Message is { Length: > 0 } message ? message + "\n" : "");
            Console.Error.WriteLine(Publishing.KubernetesPublishOptions.Usage);
            Environment.Exit(e.Message.Length > 0 ? 2 : 0);
            throw;
        }
        var hosting = builder.Configuration.GetSection("Hosting");
        if (hosting["DashboardUrl"] is { } dashboard)
        {
            builder.Options.DashboardUrl = dashboard is "" or "none" ? null : dashboard;
        }
        if (bool.TryParse(hosting["RandomizePorts"], out var randomize))
        {
            builder.Options.RandomizePorts = randomize;
        }
        return builder;
    }

    internal DistributedApplication(DistributedApplicationBuilder builder)
    {
        _builder = builder;
        Runtime = new ResourceRuntime(builder.Configuration);
        Logs = new ResourceLogs();
        var ports = new PortAllocator();
        foreach (var resource in builder.Resources.OfType<IRunnableResource>())
        {
            _supervisors[resource.Name] = new ResourceSupervisor(resource, Runtime, Logs, ports, builder.Options, _health);
        }
        ValidateDependencies();
    }

    public ResourceRuntime Runtime { get; }

    public ResourceLogs Logs { get; }

    public IReadOnlyList<IResource> Resources => _builder.Resources;

    public DistributedApplicationOptions Options => _builder.Options;

    /// <summary>Where the dashboard and control API listen, once started (null without a dashboard).</summary>
    public Uri? DashboardUrl => Options.DashboardUrl is null ? null : _dashboard?.Url;

    /// <summary>Where the control API listens (with the dashboard, or alone when a resource needs it).</summary>
    public Uri? ControlApiUrl => _dashboard?.Url;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_started)
        {
            return;
        }
        _started = true;
        foreach (var supervisor in _supervisors.Values)
        {
            supervisor.PublishInitial();
        }
        if (Options.ConsoleOutput)
        {
            _console = new ConsoleReporter(Runtime);
        }
        // The control API comes with the dashboard, or alone on a free port when a resource (the autoscaler) needs it.
        var controlApiNeeded = Resources.Any(r => r.Annotations.OfType<ControlApiAnnotation>().Any());
        if (Options.DashboardUrl is not null || controlApiNeeded)
        {
            _dashboard = new DashboardServer(this);
            await _dashboard.StartAsync(new Uri(Options.DashboardUrl ?? "http://127.0.0.1:0"), cancellationToken).ConfigureAwait(false);
            Runtime.ControlApi = _dashboard.Url;
            if (Options.DashboardUrl is not null)
            {
                _console?.Announce(_dashboard.Url);
            }
        }
        new EngineListWriter([.. Resources.SelectMany(r => r.Annotations.OfType<EngineListAnnotation>())], Runtime).Start();
        foreach (var supervisor in _supervisors.Values)
        {
            _ = RunSupervisorAsync(supervisor);
        }
    }

    private async Task RunSupervisorAsync(ResourceSupervisor supervisor)
    {
        try
        {
            await supervisor.StartAsync(_lifetime.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_lifetime.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            Logs.Write(supervisor.Resource.Name, 0, true, $"supervisor failed: {e.Message}");
        }
    }

    /// <summary>Starts, then runs until Ctrl-C or SIGTERM, then stops everything; in publish mode, writes the manifests instead.</summary>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        if (_builder.ExecutionContext.PublishOptions is { } publish)
        {
            await PublishAsync(publish, cancellationToken).ConfigureAwait(false);
            return;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            stop.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var sigquit = PosixSignalRegistration.Create(PosixSignal.SIGQUIT, OnSignal);
        await StartAsync(stop.Token).ConfigureAwait(false);
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        Console.WriteLine("Stopping…");
        await StopAsync().ConfigureAwait(false);
        Console.WriteLine("Stopped: every process the app started has exited.");
    }

    /// <summary>Writes the Kubernetes manifests of the model and says how to build the images and apply them.</summary>
    private async Task PublishAsync(Publishing.KubernetesPublishOptions options, CancellationToken cancellationToken)
    {
        var result = await new Publishing.KubernetesPublisher(_builder, options).PublishAsync(cancellationToken).ConfigureAwait(false);
        Console.WriteLine($"Wrote {result.Files.Count} files to {result.OutputPath}:");
        foreach (var file in result.Files)
        {
            Console.WriteLine($"  {file}");
        }
        foreach (var warning in result.Warnings)
        {
            Console.WriteLine($"warning: {warning}");
        }
        Console.WriteLine();
        Console.WriteLine("Images of our services (build and push each with the .NET SDK, see README \"Kubernetes\"):");
        foreach (var image in result.Images)
        {
            Console.WriteLine($"  {image}");
        }
        Console.WriteLine($"Fill in {Path.Combine(result.OutputPath, Publishing.ManifestBundle.SecretsFile)}, then: kubectl apply -k {result.OutputPath}");
    }

    /// <summary>Stops dependents before what they depend on, then the dashboard.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }
        await _lifetime.CancelAsync().ConfigureAwait(false);
        // The control API goes first, so that nothing (an autoscaler, the dashboard) scales what is being stopped.
        if (_dashboard is not null)
        {
            await _dashboard.DisposeAsync().ConfigureAwait(false);
        }
        foreach (var layer in StopOrder())
        {
            await Task.WhenAll(layer.Select(s => s.ShutdownAsync())).ConfigureAwait(false);
        }
        _console?.Dispose();
    }

    public Task ScaleAsync(string resource, int replicas) => Supervisor(resource).ScaleAsync(replicas);

    public Task RestartAsync(string resource) => Supervisor(resource).RestartAsync();

    public Task StopResourceAsync(string resource) => Supervisor(resource).StopAsync();

    public Task StartResourceAsync(string resource) =>
        Supervisor(resource).ScaleAsync(Math.Max(1, Runtime.Get(resource)?.DesiredReplicas ?? 1));

    /// <summary>Kills one replica's process as a crash would; it is restarted.</summary>
    public bool KillReplica(string resource, int replica) => Supervisor(resource).KillReplica(replica);

    public bool IsRunnable(string resource) => _supervisors.ContainsKey(resource);

    /// <summary>An HttpClient for the resource's first replica endpoint.</summary>
    public HttpClient CreateHttpClient(string resource, string endpoint = "http")
    {
        var target = _builder.FindResource(resource) ?? throw new ArgumentException($"No resource named '{resource}'.", nameof(resource));
        var url = Runtime.Endpoints(target, endpoint).FirstOrDefault()
            ?? throw new InvalidOperationException($"Resource '{resource}' has no running '{endpoint}' endpoint yet.");
        return new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(100) };
    }

    public string GetConnectionString(string resource) =>
        _builder.FindResource(resource) is IResourceWithConnectionString withConnectionString
            ? withConnectionString.GetConnectionString(Runtime)
            : throw new ArgumentException($"Resource '{resource}' has no connection string.", nameof(resource));

    private ResourceSupervisor Supervisor(string resource) =>
        _supervisors.TryGetValue(resource, out var supervisor) ? supervisor : throw new ArgumentException($"No runnable resource named '{resource}'.", nameof(resource));

    private void ValidateDependencies()
    {
        foreach (var supervisor in _supervisors.Values)
        {
            foreach (var dependency in supervisor.Dependencies)
            {
                if (!_supervisors.ContainsKey(dependency.Name))
                {
                    throw new InvalidOperationException($"'{supervisor.Resource.Name}' waits for '{dependency.Name}', which is not a resource that runs.");
                }
            }
        }
        _ = StopOrder();
    }

    /// <summary>Layers of supervisors, dependents first; throws on a cycle.</summary>
    private List<List<ResourceSupervisor>> StopOrder()
    {
        var remaining = _supervisors.Values.ToList();
        var layers = new List<List<ResourceSupervisor>>();
        while (remaining.Count > 0)
        {
            // Nobody left depends on these: stop them now.
            var layer = remaining.Where(s => !remaining.Any(o => o.Dependencies.Any(d => d.Name == s.Resource.Name))).ToList();
            if (layer.Count == 0)
            {
                throw new InvalidOperationException("WaitFor forms a cycle among: " + string.Join(", ", remaining.Select(r => r.Resource.Name)));
            }
            layers.Add(layer);
            remaining.RemoveAll(layer.Contains);
        }
        return layers;
    }

    /// <summary>Completes when the resource is running and healthy.</summary>
    public Task<ResourceSnapshot> WaitForResourceHealthyAsync(string resource, CancellationToken cancellationToken = default) =>
        Runtime.WaitForHealthyAsync(resource, cancellationToken);

    public Task<string> GetConnectionStringAsync(string resource, CancellationToken cancellationToken = default) =>
        Task.FromResult(GetConnectionString(resource));

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        if (Options.DeleteStateDirectoryOnStop && Directory.Exists(Options.StateDirectory))
        {
            Directory.Delete(Options.StateDirectory, recursive: true);
        }
        _health.Dispose();
        _lifetime.Dispose();
    }
}
