using System.Text.Json;
using VllmStack.Hosting.Common;

namespace VllmStack.Hosting.Vllm;

/// <summary>
/// A router's dynamic config file (<c>{"static_backends": [...]}</c>) listing the healthy replicas of every engine group the
/// router serves: each group's controller reports its own replicas, the file holds them all. Written whole, then renamed,
/// so that a router never reads half a file.
/// </summary>
internal sealed class EngineListFile(string path)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, IReadOnlyList<Uri>> _groups = new(StringComparer.Ordinal);
    private string _written = "";

    public string Path { get; } = path;

    /// <summary>Adds a group with no replicas yet (the file lists the groups in the order they were added).</summary>
    public void AddGroup(string group)
    {
        lock (_lock)
        {
            _groups.TryAdd(group, []);
        }
    }

    /// <summary>Sets <paramref name="group"/>'s healthy replicas and rewrites the file if its content changes.</summary>
    public void Update(string group, IReadOnlyList<Uri> replicas)
    {
        lock (_lock)
        {
            _groups[group] = replicas;
            var json = JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["static_backends"] = _groups.Values.SelectMany(urls => urls).Select(u => u.ToString()).ToArray(),
            });
            if (json == _written)
            {
                return;
            }
            AtomicFile.Write(Path, json);
            _written = json;
        }
    }

    public void Delete()
    {
        lock (_lock)
        {
            File.Delete(Path);
        }
    }
}
