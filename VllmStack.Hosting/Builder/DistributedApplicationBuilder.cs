using System.Reflection;
using Microsoft.Extensions.Configuration;
using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Orchestration;

namespace VllmStack.Hosting.Builder;

/// <summary>Settings of the run mode (not of the application): where the dashboard listens, whether ports are randomised.</summary>
public sealed class DistributedApplicationOptions
{
    /// <summary>Dashboard and control API address; null: no dashboard (tests).</summary>
    public string? DashboardUrl { get; set; } = "http://localhost:18888";

    /// <summary>Allocate every port, fixed ones included (tests run many apps side by side).</summary>
    public bool RandomizePorts { get; set; }

    /// <summary>Print the Aspire-style resource table to the console.</summary>
    public bool ConsoleOutput { get; set; } = true;

    /// <summary>Folder for files the run writes (e.g. engine lists for routers).</summary>
    public string StateDirectory { get; set; } = Path.Combine(Path.GetTempPath(), "vllmstack-" + Guid.NewGuid().ToString("N")[..12]);

    public bool DeleteStateDirectoryOnStop { get; set; } = true;
}

/// <summary>
/// Declares the application, as Aspire's <c>DistributedApplication.CreateBuilder</c> does: resources, their
/// endpoints, references and start order. <see cref="Build"/> gives the app to run (or, later, to publish).
/// </summary>
public sealed class DistributedApplicationBuilder
{
    private readonly List<IResource> _resources = [];

    internal DistributedApplicationBuilder(string[] args, DistributedApplicationOptions options, Assembly appHost)
    {
        Args = args;
        Options = options;
        AppHostAssembly = appHost;
        BuildConfiguration = appHost.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        (ExecutionContext, var configurationArgs) = DistributedApplicationExecutionContext.FromArgs(args);
        Configuration = new ConfigurationManager();
        Configuration.AddEnvironmentVariables();
        Configuration.AddCommandLine(configurationArgs);
    }

    public string[] Args { get; }

    /// <summary>Run or publish: decided by the command line (<c>publish --output-path DIR</c>).</summary>
    public DistributedApplicationExecutionContext ExecutionContext { get; }

    /// <summary>The AppHost's assembly: where the paths of its projects are recorded.</summary>
    public Assembly AppHostAssembly { get; }

    /// <summary>Debug or Release: projects run from that build output.</summary>
    public string BuildConfiguration { get; }

    /// <summary>Environment and command line (<c>--Parameters:model=…</c>, <c>--Parameters__router-port=…</c>).</summary>
    public ConfigurationManager Configuration { get; }

    public DistributedApplicationOptions Options { get; }

    public IReadOnlyList<IResource> Resources => _resources;

    public IResourceBuilder<T> AddResource<T>(T resource) where T : IResource
    {
        if (_resources.Any(r => r.Name == resource.Name))
        {
            throw new InvalidOperationException($"A resource named '{resource.Name}' already exists.");
        }
        _resources.Add(resource);
        return new ResourceBuilder<T>(resource, this);
    }

    public IResourceBuilder<T> CreateResourceBuilder<T>(T resource) where T : IResource => new ResourceBuilder<T>(resource, this);

    public IResourceBuilder<ProjectResource> AddProject<TProject>(string name) where TProject : IProjectMetadata, new() =>
        AddProject(name, new TProject().ProjectPath);

    /// <summary>A project the AppHost references, by its name (<c>VllmStack.Router</c>).</summary>
    public IResourceBuilder<ProjectResource> AddProjectByName(string name, string projectName) => AddProject(name, ProjectPath(projectName));

    public IResourceBuilder<ProjectResource> AddProject(string name, string projectPath)
    {
        var builder = AddResource(new ProjectResource(name, projectPath, BuildConfiguration)).WithHttpEndpoint();
        builder.Resource.Annotations.Add(new ProjectAnnotation(builder.Resource.ProjectPath));
        return builder;
    }

    public IResourceBuilder<ExecutableResource> AddExecutable(string name, string command, string? workingDirectory = null, params string[] args)
    {
        var builder = AddResource(new ExecutableResource(name, command, workingDirectory));
        return args.Length > 0 ? builder.WithArgs(args) : builder;
    }

    public IResourceBuilder<ContainerResource> AddContainer(string name, string image, string tag = "latest") =>
        AddResource(new ContainerResource(name, image, tag));

    /// <summary>A value from <c>Parameters:name</c> in configuration; a secret one is never printed or shown.</summary>
    public IResourceBuilder<ParameterResource> AddParameter(string name, string? defaultValue = null, bool secret = false) =>
        AddResource(new ParameterResource(name, secret, defaultValue));

    /// <summary>
    /// A connection string from configuration (<c>ConnectionStrings:name</c>) for something outside the application, such as a
    /// managed Redis; others reference it as they would the resource it stands for. It is secret (it may carry a password).
    /// </summary>
    public IResourceBuilder<ConnectionStringParameterResource> AddConnectionString(string name) =>
        AddResource(new ConnectionStringParameterResource(name));

    public IResource? FindResource(string name) => _resources.FirstOrDefault(r => r.Name == name);

    public DistributedApplication Build() => new(this);

    /// <summary>The path of a project the AppHost references, from its assembly metadata <c>vllmstack:project:NAME</c> (written by its build).</summary>
    public string ProjectPath(string projectName)
    {
        var key = "vllmstack:project:" + projectName;
        return AppHostAssembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value
            ?? throw new InvalidOperationException($"The AppHost does not reference project {projectName} (no assembly metadata '{key}').");
    }
}
