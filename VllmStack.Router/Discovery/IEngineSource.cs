namespace VllmStack.Router.Discovery;

/// <summary>
/// Where engines come from (a static list, a dynamic config file, Kubernetes pods). A source yields the full
/// set of engine base URLs it currently knows each time that set changes, until cancelled.
/// </summary>
public interface IEngineSource
{
    string Name { get; }

    IAsyncEnumerable<IReadOnlySet<Uri>> WatchAsync(CancellationToken cancellationToken);
}
