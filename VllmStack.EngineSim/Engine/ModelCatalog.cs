using System.Collections.Concurrent;
using VllmStack.EngineSim.Configuration;

namespace VllmStack.EngineSim.Engine;

/// <summary>The request's <c>model</c> resolved: the base model it runs on, and the adapter if it names one.</summary>
public sealed record ModelTarget(string RequestedName, string BaseModel, string? Lora);

/// <summary>The served model names and the LoRA adapters, including those loaded at runtime.</summary>
public sealed class ModelCatalog
{
    private readonly EngineOptions _options;
    private readonly ConcurrentDictionary<string, LoraModule> _loras = new(StringComparer.Ordinal);

    public ModelCatalog(EngineOptions options)
    {
        _options = options;
        Created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        foreach (var lora in options.LoraModules)
        {
            _loras[lora.Name] = lora;
        }
    }

    public long Created { get; }

    public IReadOnlyList<string> BaseModels => _options.ModelNames;

    public IEnumerable<LoraModule> Loras => _loras.Values.OrderBy(l => l.Name, StringComparer.Ordinal);

    public int LoraCount => _loras.Count;

    /// <summary>Null when nothing by that name is served. An omitted model means the first served name, as in vLLM.</summary>
    public ModelTarget? Resolve(string? requested)
    {
        if (string.IsNullOrEmpty(requested))
        {
            return new ModelTarget(_options.PrimaryModelName, _options.PrimaryModelName, null);
        }
        foreach (var name in _options.ModelNames)
        {
            if (string.Equals(name, requested, StringComparison.Ordinal))
            {
                return new ModelTarget(requested, name, null);
            }
        }
        if (_loras.TryGetValue(requested, out var lora))
        {
            return new ModelTarget(requested, lora.BaseModelName ?? _options.PrimaryModelName, lora.Name);
        }
        return null;
    }

    public bool TryLoad(LoraModule lora) =>
        !_options.ModelNames.Contains(lora.Name, StringComparer.Ordinal) && _loras.TryAdd(lora.Name, lora);

    public bool TryUnload(string name) => _loras.TryRemove(name, out _);
}
