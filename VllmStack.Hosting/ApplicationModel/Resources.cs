namespace VllmStack.Hosting.ApplicationModel;

/// <summary>Any program on the machine, started once per replica.</summary>
public class ExecutableResource(string name, string command, string? workingDirectory = null) : Resource(name), IRunnableResource
{
    public string Command { get; } = command;

    public string? WorkingDirectory { get; } = workingDirectory;

    public virtual string KindDescription => "executable";
}

/// <summary>A .NET project of this repository, run from its build output as <c>dotnet X.dll</c> (no rebuild at start).</summary>
public sealed class ProjectResource(string name, string projectPath, string buildConfiguration) : Resource(name), IRunnableResource
{
    public string ProjectPath { get; } = Path.GetFullPath(projectPath);

    /// <summary>The configuration whose build output is run: the AppHost's own.</summary>
    public string BuildConfiguration { get; } = buildConfiguration;

    public string KindDescription => "project";

    /// <summary>The built assembly for the configuration the AppHost itself was built with.</summary>
    public string AssemblyPath
    {
        get
        {
            var configuration = BuildConfiguration;
            var directory = Path.GetDirectoryName(ProjectPath)!;
            var assembly = Path.GetFileNameWithoutExtension(ProjectPath);
            return Path.Combine(directory, "bin", configuration, "net10.0", assembly + ".dll");
        }
    }
}

/// <summary>An OCI image run by a container runtime (docker or podman) when one is present.</summary>
public sealed class ContainerResource(string name, string image, string tag = "latest") : Resource(name), IRunnableResource
{
    public string Image { get; } = image;

    public string Tag { get; } = tag;

    public string KindDescription => $"container {Image}:{Tag}";
}

/// <summary>
/// A value supplied from configuration (<c>Parameters:name</c>), e.g. the model or an API key. When published it stays a
/// reference: a key of the <c>parameters</c> ConfigMap, or of the Secret when it is secret, so its value is set in one place.
/// </summary>
public class ParameterResource(string name, bool secret, string? defaultValue) : Resource(name)
{
    public bool Secret { get; } = secret;

    public string? DefaultValue { get; } = defaultValue;

    /// <summary>Where configuration holds the value.</summary>
    public virtual string ConfigurationKey => $"Parameters:{Name}";
}

/// <summary>A connection string from <c>ConnectionStrings:name</c>: something outside the application (a managed Redis).</summary>
public sealed class ConnectionStringParameterResource(string name) : ParameterResource(name, secret: true, defaultValue: null), IResourceWithConnectionString
{
    public override string ConfigurationKey => $"ConnectionStrings:{Name}";

    public string GetConnectionString(Orchestration.ResourceRuntime runtime) => runtime.ParameterValue(this);
}

/// <summary>Project metadata of the kind Aspire generates for an AppHost's project references.</summary>
public interface IProjectMetadata
{
    string ProjectPath { get; }
}
