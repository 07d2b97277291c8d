namespace VllmStack.Router.Lora;

/// <summary>
/// The adapters the router may load: the catalogue file (<see cref="LoraOptions.AdaptersFile"/>, re-read when it
/// changes) and what the admin API adds or removes, kept in the file's store (<see cref="ILoraCatalogStore"/>) so that
/// other router replicas and a restart see it. Without a file, admin changes live in this router's memory.
/// </summary>
public sealed class LoraCatalog : BackgroundService
{
    private readonly LoraOptions _options;
    private readonly ILoraCatalogStore _store;
    private readonly ILogger<LoraCatalog> _logger;
    private readonly SemaphoreSlim _writing = new(1, 1);
    private IReadOnlyDictionary<string, LoraAdapter> _adapters = new Dictionary<string, LoraAdapter>(StringComparer.Ordinal);
    /// <summary>
    /// The file's content when last read: only a change of the file is applied. Not what this router last applied — with
    /// the ConfigMap store, the mounted file shows an admin change a minute later, and until then it must not undo it.
    /// </summary>
    private string? _lastFileText;

    /// <exception cref="FormatException">The catalogue file exists but is not a valid catalogue (start-up fails with the reason).</exception>
    public LoraCatalog(LoraOptions options, ILoraCatalogStore store, ILogger<LoraCatalog> logger)
    {
        _options = options;
        _logger = logger;
        _store = store;
        if (options.AdaptersFile is { Length: > 0 } path && File.Exists(path))
        {
            _lastFileText = File.ReadAllText(path);
            Apply(_lastFileText);
        }
    }

    /// <summary>Raised after the catalogue changed, with the adapters removed from it (the manager unloads them).</summary>
    public event Action<IReadOnlyList<LoraAdapter>>? Changed;

    public IReadOnlyDictionary<string, LoraAdapter> Adapters => Volatile.Read(ref _adapters);

    public bool TryGet(string name, out LoraAdapter adapter) => Adapters.TryGetValue(name, out adapter!);

    /// <summary>Adds an adapter (the admin API); returns false when the same one is there already.</summary>
    /// <exception cref="InvalidOperationException">Another adapter has that name.</exception>
    /// <exception cref="LoraCatalogStoreException">The change could not be stored; nothing changed.</exception>
    public async Task<bool> AddAsync(LoraAdapter adapter, CancellationToken cancellationToken)
    {
        var added = false;
        await ChangeAsync(stored =>
        {
            added = false;
            if (stored.FirstOrDefault(a => a.Name == adapter.Name) is { } existing)
            {
                return existing.SameAs(adapter)
                    ? stored
                    : throw new InvalidOperationException(
                        $"An adapter named '{adapter.Name}' already exists (base model '{existing.BaseModel}', source '{existing.Source}'); remove it first.");
            }
            added = true;
            return [.. stored, adapter];
        }, cancellationToken).ConfigureAwait(false);
        return added;
    }

    /// <summary>Removes an adapter (the admin API); returns it, or null when there is none of that name.</summary>
    /// <exception cref="LoraCatalogStoreException">The change could not be stored; nothing changed.</exception>
    public async Task<LoraAdapter?> RemoveAsync(string name, CancellationToken cancellationToken)
    {
        LoraAdapter? removed = null;
        await ChangeAsync(stored =>
        {
            removed = stored.FirstOrDefault(a => a.Name == name);
            return removed is null ? stored : [.. stored.Where(a => a.Name != name)];
        }, cancellationToken).ConfigureAwait(false);
        return removed;
    }

    private async Task ChangeAsync(Func<IReadOnlyList<LoraAdapter>, IReadOnlyList<LoraAdapter>> change, CancellationToken cancellationToken)
    {
        await _writing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var next = await _store.UpdateAsync([.. Adapters.Values], change, cancellationToken).ConfigureAwait(false);
            Apply(LoraCatalogJson.Serialize(next));
        }
        finally
        {
            _writing.Release();
        }
    }

    /// <summary>Polls the file: a changed, valid catalogue replaces the current one; an invalid one is logged and ignored.</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_options.AdaptersFile is not { Length: > 0 } path)
        {
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2));
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            string text;
            try
            {
                text = await File.ReadAllTextAsync(path, stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // absent for now (not yet written, or a ConfigMap being swapped): keep the catalogue we have
            }
            await _writing.WaitAsync(stoppingToken).ConfigureAwait(false);
            try
            {
                if (text != _lastFileText)
                {
                    _lastFileText = text;
                    Apply(text);
                }
            }
            catch (FormatException e)
            {
                _logger.LogError("The adapter catalogue {Path} is not valid ({Reason}); the previous one stays in force", path, e.Message);
            }
            finally
            {
                _writing.Release();
            }
        }
    }

    private void Apply(string text)
    {
        var parsed = LoraCatalogJson.Parse(text).ToDictionary(a => a.Name, StringComparer.Ordinal);
        var before = Adapters;
        Volatile.Write(ref _adapters, parsed);
        var removed = before.Values.Where(a => !parsed.TryGetValue(a.Name, out var now) || !now.SameAs(a)).ToList();
        var added = parsed.Values.Where(a => !before.TryGetValue(a.Name, out var then) || !then.SameAs(a)).ToList();
        if (removed.Count > 0 || added.Count > 0)
        {
            _logger.LogInformation("LoRA adapter catalogue: {Count} adapters ({Added} added, {Removed} removed)", parsed.Count, added.Count, removed.Count);
            Changed?.Invoke(removed);
        }
    }
}
