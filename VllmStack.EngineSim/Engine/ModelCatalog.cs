using VllmStack.EngineSim.Configuration;

namespace VllmStack.EngineSim.Engine;

/// <summary>The request's <c>model</c> resolved: the base model it runs on, and the adapter if it names one.</summary>
public sealed record ModelTarget(string RequestedName, string BaseModel, string? Lora);

/// <summary>How a LoRA load ended.</summary>
public enum LoraLoadStatus
{
    /// <summary>Served from now on (a reload in place included).</summary>
    Loaded,

    /// <summary>Refused: an adapter of that name is loaded and the load was not in place.</summary>
    AlreadyLoaded,

    /// <summary>Refused: the adapter did not pass the worker's checks (<see cref="LoraLoadOutcome.Error"/>).</summary>
    Failed,
}

/// <summary>A LoRA load's outcome; <see cref="Error"/> says why it failed.</summary>
public sealed record LoraLoadOutcome(LoraLoadStatus Status, LoraLoadError? Error = null);

/// <summary>
/// The served model names and the LoRA adapters, in the order they were loaded (static <c>--lora-modules</c> first),
/// as vLLM's <c>OpenAIServingModels</c> keeps them: a reload in place keeps an adapter's position.
/// </summary>
public sealed class ModelCatalog(EngineOptions options, Scheduler scheduler)
{
    private readonly Lock _write = new();
    private readonly LoraAdapterResolver _resolver = new(options);

    // Copied on write: every request resolves its model, loads are rare.
    private volatile LoraModule[] _loras = [];

    public long Created { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public IReadOnlyList<string> BaseModels => options.ModelNames;

    public IReadOnlyList<LoraModule> Loras => _loras;

    public int LoraCount => _loras.Length;

    /// <summary>Null when nothing by that name is served. An omitted model means the first served name, as in vLLM.</summary>
    public ModelTarget? Resolve(string? requested)
    {
        if (string.IsNullOrEmpty(requested))
        {
            return new ModelTarget(options.PrimaryModelName, options.PrimaryModelName, null);
        }
        foreach (var name in options.ModelNames)
        {
            if (string.Equals(name, requested, StringComparison.Ordinal))
            {
                return new ModelTarget(requested, name, null);
            }
        }
        foreach (var lora in _loras)
        {
            if (string.Equals(lora.Name, requested, StringComparison.Ordinal))
            {
                return new ModelTarget(requested, lora.BaseModelName ?? options.PrimaryModelName, lora.Name);
            }
        }
        return null;
    }

    /// <summary>
    /// Loads an adapter after checking it (<see cref="LoraAdapterResolver"/>); a name already loaded is refused unless
    /// <paramref name="inplace"/>, which re-reads it at its new path. A base model name that is not served is dropped, as vLLM drops it.
    /// A good adapter takes <see cref="EngineOptions.LoraLoadSeconds"/> to read, during which the engine runs no step
    /// (<see cref="Scheduler.RunBetweenStepsAsync"/>); it is served once that time is over. A refused one fails at once
    /// (the worker stops at the config, before reading weights).
    /// </summary>
    /// <param name="cancellationToken">Stops the wait for the engine; vLLM's engine core finishes a call it began, so pass the host's stopping token, not a client's.</param>
    public async Task<LoraLoadOutcome> LoadAsync(LoraModule lora, bool inplace, CancellationToken cancellationToken)
    {
        if (lora.BaseModelName is { } baseModel && !options.ModelNames.Contains(baseModel, StringComparer.Ordinal))
        {
            lora = lora with { BaseModelName = null };
        }
        if (!inplace && Array.Exists(_loras, l => l.Name == lora.Name))
        {
            return new(LoraLoadStatus.AlreadyLoaded);
        }
        if (_resolver.Check(lora.Name, lora.Path) is { } error)
        {
            return new(LoraLoadStatus.Failed, error);
        }
        await scheduler.RunBetweenStepsAsync(TimeSpan.FromSeconds(options.LoraLoadSeconds), cancellationToken).ConfigureAwait(false);
        lock (_write)
        {
            var index = Array.FindIndex(_loras, l => l.Name == lora.Name);
            if (index >= 0 && !inplace)
            {
                // A load of the same name that ran meanwhile won.
                return new(LoraLoadStatus.AlreadyLoaded);
            }
            LoraModule[] next = [.. _loras];
            if (index >= 0)
            {
                next[index] = lora;
            }
            else
            {
                next = [.. next, lora];
            }
            _loras = next;
            return new(LoraLoadStatus.Loaded);
        }
    }

    /// <summary>False when no adapter of that name is loaded.</summary>
    public bool TryUnload(string name)
    {
        lock (_write)
        {
            var remaining = _loras.Where(l => l.Name != name).ToArray();
            if (remaining.Length == _loras.Length)
            {
                return false;
            }
            _loras = remaining;
            return true;
        }
    }
}
