using System.Text.Json;
using VllmStack.Hosting.Vllm;

namespace VllmStack.Hosting.Orchestration;

/// <summary>Rewrites each router's engine list (<c>static_backends</c>) whenever the engine replicas change.</summary>
internal sealed class EngineListWriter(IReadOnlyList<EngineListAnnotation> lists, ResourceRuntime runtime)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, string> _written = [];

    public void Start()
    {
        foreach (var list in lists)
        {
            Write(list);
        }
        runtime.Changed += snapshot =>
        {
            foreach (var list in lists.Where(l => l.Engines.Name == snapshot.Name))
            {
                Write(list);
            }
        };
    }

    private void Write(EngineListAnnotation list)
    {
        var urls = runtime.Endpoints(list.Engines).Select(u => u.ToString()).ToArray();
        var json = JsonSerializer.Serialize(new Dictionary<string, object> { ["static_backends"] = urls });
        lock (_lock)
        {
            if (_written.GetValueOrDefault(list.FilePath) == json)
            {
                return;
            }
            Directory.CreateDirectory(Path.GetDirectoryName(list.FilePath)!);
            // Write-then-rename: the router never reads half a file.
            var temporary = list.FilePath + ".tmp";
            File.WriteAllText(temporary, json);
            File.Move(temporary, list.FilePath, overwrite: true);
            _written[list.FilePath] = json;
        }
    }
}
