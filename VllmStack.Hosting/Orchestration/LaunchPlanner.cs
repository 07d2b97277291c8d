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
    public static LaunchPlan Plan(IRunnableResource resource, ReplicaContext context)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["OTEL_SERVICE_NAME"] = resource.Name,
            ["OTEL_RESOURCE_ATTRIBUTES"] = $"service.instance.id={resource.Name}-{context.Replica}",
        };
        var endpoints = resource.Annotations.OfType<EndpointAnnotation>().ToList();
        foreach (var endpoint in endpoints.Where(e => e.PortEnvironmentVariable is not null))
        {
            env[endpoint.PortEnvironmentVariable!] = context.Port(endpoint.Name).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        if (resource is ProjectResource && endpoints.FirstOrDefault(e => e.Name == "http" && e.PortEnvironmentVariable is null) is not null)
        {
            env["ASPNETCORE_URLS"] = $"http://127.0.0.1:{context.Port("http")}";
        }
        foreach (var reference in resource.Annotations.OfType<ReferenceAnnotation>())
        {
            AddReference(env, reference.Resource, context.Runtime);
        }
        foreach (var annotation in resource.Annotations.OfType<EnvironmentAnnotation>())
        {
            foreach (var (key, value) in annotation.Values(context))
            {
                env[key] = value;
            }
        }
        var args = resource.Annotations.OfType<ArgsAnnotation>().SelectMany(a => a.Values(context)).ToList();

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

/// <summary>Finds a usable container runtime: its client on PATH and its engine answering.</summary>
public static class ContainerRuntime
{
    private static readonly Lazy<string?> Found = new(Probe);

    public static string? Find() => Found.Value;

    private static string? Probe()
    {
        foreach (var candidate in new[] { "docker", "podman" })
        {
            if (Executables.Which(candidate) is { } path && Executables.RunQuietly(path, ["info"], TimeSpan.FromSeconds(5)))
            {
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

    /// <summary>Runs a probe command; true when it exits 0 within the timeout (it is killed otherwise).</summary>
    public static bool RunQuietly(string fileName, IEnumerable<string> args, TimeSpan timeout)
    {
        try
        {
            var info = new System.Diagnostics.ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in args)
            {
                info.ArgumentList.Add(arg);
            }
            using var process = System.Diagnostics.Process.Start(info);
            if (process is null)
            {
                return false;
            }
            process.StandardOutput.ReadToEndAsync();
            process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
