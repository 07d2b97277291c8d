using VllmStack.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Orchestration;

/// <summary>A replica's command line and environment, ready to start.</summary>
public sealed record LaunchPlan(LaunchSpec Spec, IReadOnlyDictionary<string, string> Environment);

/// <summary>
/// Turns a resource and its annotations into the command and environment of one replica: the Aspire variables
/// for references (<c>services__…</c>, <c>ConnectionStrings__…</c>), endpoint ports, OpenTelemetry names.
/// </summary>
public static class LaunchPlanner
{
    private static readonly string[] OtlpSettings =
        ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_METRIC_EXPORT_INTERVAL", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BLRP_SCHEDULE_DELAY"];

    public static LaunchPlan Plan(IRunnableResource resource, ReplicaContext context)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["OTEL_SERVICE_NAME"] = resource.Name,
            ["OTEL_RESOURCE_ATTRIBUTES"] = $"service.instance.id={resource.Name}-{context.Replica}",
        };
        // Telemetry goes where the AppHost's own goes (a collector, or later the dashboard's OTLP receiver).
        foreach (var key in OtlpSettings)
        {
            if (context.Runtime.Setting(key) is { Length: > 0 } value)
            {
                env[key] = value;
            }
        }
        if (resource is ProjectResource && resource.Annotations.OfType<EndpointAnnotation>().Any(e => e.Name == "http" && e.PortEnvironmentVariable is null))
        {
            env["ASPNETCORE_URLS"] = $"http://127.0.0.1:{context.Port("http")}";
        }
        foreach (var (key, value) in ModelEnvironment(resource, context))
        {
            env[key] = value;
        }
        var args = Arguments(resource, context);

        var spec = resource.Annotations.OfType<LaunchAnnotation>().LastOrDefault() is { } launch
            ? launch.Resolve(context)
            : resource switch
            {
                ProjectResource project => ProjectSpec(project, args),
                ExecutableResource executable => new LaunchSpec(executable.Command, args, executable.WorkingDirectory),
                ContainerResource container => ContainerSpec(container, context, args, env),
                _ => throw new InvalidOperationException($"Resource '{resource.Name}' of kind {resource.GetType().Name} cannot be run."),
            };
        if (resource.Annotations.OfType<LaunchAnnotation>().Any())
        {
            spec = spec with { Arguments = [.. spec.Arguments, .. args] };
        }
        return new LaunchPlan(spec, env);
    }

    /// <summary>
    /// The environment the model itself declares: endpoint ports, references (<c>services__…</c>, <c>ConnectionStrings__…</c>),
    /// the control API and explicit variables. The publisher evaluates the same in its view of the runtime.
    /// </summary>
    public static Dictionary<string, string> ModelEnvironment(IResource resource, ReplicaContext context)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var endpoint in resource.Annotations.OfType<EndpointAnnotation>().Where(e => e.PortEnvironmentVariable is not null))
        {
            env[endpoint.PortEnvironmentVariable!] = context.Port(endpoint.Name).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        foreach (var reference in resource.Annotations.OfType<ReferenceAnnotation>())
        {
            AddReference(env, reference.Resource, context.Runtime);
        }
        foreach (var annotation in resource.Annotations.OfType<ControlApiAnnotation>())
        {
            env[annotation.EnvironmentVariable] = context.Runtime.ControlApi?.ToString().TrimEnd('/')
                ?? throw new InvalidOperationException($"Resource '{resource.Name}' needs the AppHost's control API, which is not running.");
        }
        foreach (var annotation in resource.Annotations.OfType<EnvironmentAnnotation>())
        {
            foreach (var (key, value) in annotation.Values(context))
            {
                env[key] = value;
            }
        }
        return env;
    }

    /// <summary>The command-line arguments the model declares (after the program's own).</summary>
    public static List<string> Arguments(IResource resource, ReplicaContext context) =>
        [.. resource.Annotations.OfType<ArgsAnnotation>().SelectMany(a => a.Values(context))];

    public static void AddReference(Dictionary<string, string> env, IResource source, ResourceRuntime runtime)
    {
        if (source is IResourceWithConnectionString withConnectionString)
        {
            env[$"ConnectionStrings__{source.Name}"] = withConnectionString.GetConnectionString(runtime);
        }
        foreach (var endpoint in source.Annotations.OfType<EndpointAnnotation>())
        {
            var urls = runtime.Endpoints(source, endpoint.Name);
            for (var i = 0; i < urls.Count; i++)
            {
                env[$"services__{source.Name}__{endpoint.Name}__{i}"] = urls[i].ToString().TrimEnd('/');
            }
        }
    }

    private static LaunchSpec ProjectSpec(ProjectResource project, List<string> args)
    {
        var assembly = project.AssemblyPath;
        if (!File.Exists(assembly))
        {
            throw new FileNotFoundException($"{assembly} does not exist: build the solution first (dotnet build VllmStack.sln).", assembly);
        }
        return new LaunchSpec("dotnet", [assembly, .. args], Path.GetDirectoryName(project.ProjectPath), "project");
    }

    private static LaunchSpec ContainerSpec(ContainerResource container, ReplicaContext context, List<string> args, Dictionary<string, string> env)
    {
        var runtime = ContainerRuntime.Find() ?? throw new InvalidOperationException(
            $"Resource '{container.Name}' needs a container runtime (docker or podman) with a running engine; none was found.");
        List<string> command = ["run", "--rm", "--name", $"vllmstack-{container.Name}-{context.Replica}-{Environment.ProcessId}"];
        foreach (var (name, port) in context.Ports)
        {
            command.AddRange(["-p", $"127.0.0.1:{port}:{port}"]);
        }
        foreach (var (key, value) in env)
        {
            command.AddRange(["-e", $"{key}={value}"]);
        }
        command.Add($"{container.Image}:{container.Tag}");
        command.AddRange(args);
        return new LaunchSpec(runtime, command, null, "container");
    }
}

/// <summary>Finds a usable container runtime: its client on PATH and its engine answering. Probed once per process.</summary>
public static class ContainerRuntime
{
    private static readonly Lazy<Task<string?>> Found = new(ProbeAsync);
    private static string? _found;

    /// <summary>The runtime found by <see cref="FindAsync"/>, or null (also before it has been probed).</summary>
    public static string? Find() => Volatile.Read(ref _found);

    public static Task<string?> FindAsync() => Found.Value;

    private static async Task<string?> ProbeAsync()
    {
        foreach (var candidate in new[] { "docker", "podman" })
        {
            if (Executables.Which(candidate) is { } path && await Executables.OutputAsync(path, ["info"], null, TimeSpan.FromSeconds(5), CancellationToken.None).ConfigureAwait(false) is not null)
            {
                Volatile.Write(ref _found, path);
                return path;
            }
        }
        return null;
    }
}

/// <summary>Small helpers for finding and probing programs on PATH.</summary>
public static class Executables
{
    public static string? Which(string name)
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>
    /// Runs a short probe command (<c>redis-server --version</c>, <c>docker info</c>): its standard output when it exits 0
    /// within <paramref name="timeout"/>, null otherwise (it is killed on time-out, and a missing program is null too).
    /// </summary>
    public static async Task<string?> OutputAsync(string fileName, IEnumerable<string> args, string? workingDirectory, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var info = new System.Diagnostics.ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        System.Diagnostics.Process? process;
        try
        {
            process = System.Diagnostics.Process.Start(info);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
        if (process is null)
        {
            return null;
        }
        using (process)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            try
            {
                var output = process.StandardOutput.ReadToEndAsync(deadline.Token);
                var errors = process.StandardError.ReadToEndAsync(deadline.Token);
                await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
                // A child left behind could hold the pipes open after the command itself exited: reading is bounded too.
                var text = await output.ConfigureAwait(false);
                await errors.ConfigureAwait(false);
                return process.ExitCode == 0 ? text : null;
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                cancellationToken.ThrowIfCancellationRequested();
                return null;
            }
        }
    }
}
