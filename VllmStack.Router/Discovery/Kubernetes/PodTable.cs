namespace VllmStack.Router.Discovery;

/// <summary>The engine-relevant state of the watched pods, keyed by pod uid, and the resource version it reflects.</summary>
internal sealed class PodTable
{
    private readonly Dictionary<string, Uri> _engines = new(StringComparer.Ordinal);

    public string ResourceVersion { get; set; } = "";

    /// <summary>Pods known, engines or not (for logs).</summary>
    public int Count { get; private set; }

    /// <summary>Watch events applied since the last list; zero means a watch never got going.</summary>
    public int EventsSinceList { get; set; }

    public void Reset(IEnumerable<PodInfo> pods, string resourceVersion)
    {
        _engines.Clear();
        Count = 0;
        foreach (var pod in pods)
        {
            Count++;
            if (pod.Engine is not null)
            {
                _engines[pod.Key] = pod.Engine;
            }
        }
        ResourceVersion = resourceVersion;
        EventsSinceList = 0;
    }

    public void Upsert(PodInfo pod)
    {
        if (pod.Engine is null)
        {
            _engines.Remove(pod.Key);
        }
        else
        {
            _engines[pod.Key] = pod.Engine;
        }
    }

    public void Remove(string key) => _engines.Remove(key);

    public IReadOnlySet<Uri> Engines() => new HashSet<Uri>(_engines.Values);
}
