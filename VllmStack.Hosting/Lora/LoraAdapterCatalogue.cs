using System.Text.Json;
using System.Text.Json.Serialization;
using Aspire.Hosting;
using VllmStack.Hosting.Vllm;

namespace VllmStack.Hosting.Lora;

/// <summary>
/// The router's LoRA adapter catalogue (<c>--lora-adapters-file</c>): every adapter declared on the engine groups a router
/// serves, each with its base model (its group's model) and source —
/// <c>{"adapters":[{"name":"sql-lora","base_model":"meta-llama/Llama-3.1-8B-Instruct","source":"/adapters/sql"}]}</c>.
/// The hosting writes it once, at start (locally a file, published a ConfigMap); afterwards it belongs to the router,
/// whose admin API writes adapters added or removed at run time back into it.
/// </summary>
public static class LoraAdapterCatalogue
{
    /// <summary>The catalogue's file name (and its key in the published ConfigMap).</summary>
    public const string FileName = "adapters.json";

    /// <summary>Where router pods find the catalogue: the ConfigMap is mounted on this directory (not a subPath, so updates reach the pod).</summary>
    public const string KubernetesDirectory = "/etc/vllmstack/lora";

    /// <summary>The published ConfigMap holding <paramref name="router"/>'s catalogue, which that router patches.</summary>
    public static string ConfigMapName(string router) => $"{router}-lora-adapters";

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>The catalogue of the adapters of <paramref name="groups"/>, in group and declaration order.</summary>
    /// <exception cref="DistributedApplicationException">Two groups declare an adapter of the same name, or an adapter has a
    /// base model's name (clients could not tell them apart).</exception>
    public static async Task<string> RenderAsync(IEnumerable<VllmResource> groups, CancellationToken cancellationToken)
    {
        var entries = new List<Entry>();
        var models = new HashSet<string>(StringComparer.Ordinal);
        foreach (var group in groups)
        {
            var model = await group.Model.GetValueAsync(cancellationToken).ConfigureAwait(false) ?? "";
            models.Add(model);
            entries.AddRange(group.LoraAdapters.Select(a => new Entry(a.Name, model, a.Source, group.Name)));
        }
        var problems = entries.GroupBy(e => e.Name, StringComparer.Ordinal).Where(g => g.Count() > 1)
            .Select(g => $"adapter '{g.Key}' is declared by engine groups {string.Join(", ", g.Select(e => e.Group))}")
            .Concat(entries.Where(e => models.Contains(e.Name)).Select(e => $"adapter '{e.Name}' of engine group {e.Group} has the name of a model"))
            .ToList();
        if (problems.Count > 0)
        {
            throw new DistributedApplicationException($"The LoRA adapters cannot be served by one router: {string.Join("; ", problems)}.");
        }
        return JsonSerializer.Serialize(new Document(entries), Json);
    }

    private sealed record Document([property: JsonPropertyName("adapters")] IReadOnlyList<Entry> Adapters);

    private sealed record Entry(
        [property: JsonPropertyName("name")] string Name,
        [property: JsonPropertyName("base_model")] string BaseModel,
        [property: JsonPropertyName("source")] string Source,
        [property: JsonIgnore] string Group);
}
