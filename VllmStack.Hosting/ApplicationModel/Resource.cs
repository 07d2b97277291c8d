using System.Text.RegularExpressions;
using VllmStack.Hosting.Orchestration;

namespace VllmStack.Hosting.ApplicationModel;

/// <summary>Something the application runs or refers to: a project, an executable, a container, a parameter.</summary>
public interface IResource
{
    string Name { get; }

    List<IResourceAnnotation> Annotations { get; }
}

/// <summary>Metadata attached to a resource; run mode and the publisher read it.</summary>
public interface IResourceAnnotation;

public abstract partial class Resource : IResource
{
    protected Resource(string name)
    {
        if (!ValidName().IsMatch(name))
        {
            throw new ArgumentException($"Resource name '{name}' must be lower-case letters, digits and hyphens, starting with a letter (at most 63 characters).", nameof(name));
        }
        Name = name;
    }

    public string Name { get; }

    public List<IResourceAnnotation> Annotations { get; } = [];

    public IEnumerable<T> AnnotationsOf<T>() where T : IResourceAnnotation => Annotations.OfType<T>();

    public override string ToString() => Name;

    [GeneratedRegex("^[a-z][a-z0-9-]{0,62}$")]
    private static partial Regex ValidName();
}

/// <summary>A resource the orchestrator starts as processes (one per replica).</summary>
public interface IRunnableResource : IResource
{
    /// <summary>A short human description of how it runs ("project", "executable", "EngineSim (simulated)").</summary>
    string KindDescription { get; }
}

/// <summary>
/// A resource that must look at the machine before it can start (which engine or Redis server to run): the
/// supervisor awaits <see cref="PrepareAsync"/> before launching its first replica. A failure is kept and
/// reported as the resource's reason for not starting.
/// </summary>
public interface IPreparedResource : IResource
{
    Task PrepareAsync(CancellationToken cancellationToken);
}

/// <summary>A resource others reach through a connection string (<c>ConnectionStrings__name</c>).</summary>
public interface IResourceWithConnectionString : IResource
{
    /// <summary>The connection string once the resource runs (its endpoint allocated).</summary>
    string GetConnectionString(ResourceRuntime runtime);
}
