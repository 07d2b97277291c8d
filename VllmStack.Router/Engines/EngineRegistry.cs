using VllmStack.Router.Discovery;

namespace VllmStack.Router.Engines;

/// <summary>
/// The engines the router knows: the union of what every discovery source currently reports. Engines that
/// appear get an id and are announced (so their models are fetched at once); engines that disappear are
/// dropped from routing immediately, while requests already sent to them run to completion.
/// </summary>
public sealed class EngineRegistry(IEnumerable<IEngineSource> sources, Configuration.RouterOptions options, ILogger<EngineRegistry> logger) : BackgroundService
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, IReadOnlySet<Uri>> _bySource = [];
    private readonly Dictionary<Uri, Engine> _engines = [];
    private Engine[] _snapshot = [];
    private int _nextId;

    public IReadOnlyList<Engine> Engines => Volatile.Read(ref _snapshot);

    /// <summary>Raised (outside the lock) with the new set after any change.</summary>
    public event Action<IReadOnlyList<Engine>, IReadOnlyList<Engine>>? Changed;

    /// <summary>Models to assume for an engine until its <c>/v1/models</c> answers (static models).</summary>
    public Func<Uri, string?> PresetModel { get; set; } = _ => null;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(sources.Select(source => WatchAsync(source, stoppingToken)));

    private async Task WatchAsync(IEngineSource source, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await foreach (var set in source.WatchAsync(cancellationToken).ConfigureAwait(false))
                {
                    Apply(source.Name, set);
                }
                return;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                logger.LogError(e, "Engine source {Source} failed; restarting it in 5 s", source.Name);
                await Task.Delay(TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    internal void Apply(string sourceName, IReadOnlySet<Uri> urls)
    {
        List<Engine> added = [];
        List<Engine> removed = [];
        lock (_lock)
        {
            _bySource[sourceName] = urls;
            var wanted = _bySource.Values.SelectMany(s => s).ToHashSet();
            foreach (var url in wanted.Where(u => !_engines.ContainsKey(u)))
            {
                var engine = new Engine(Interlocked.Increment(ref _nextId), url) { Stats = new(TimeSpan.FromSeconds(options.RequestStatsWindow)) };
                if (PresetModel(url) is { } model)
                {
                    engine.SetModels([model]);
                }
                _engines[url] = engine;
                added.Add(engine);
            }
            foreach (var (url, engine) in _engines.Where(e => !wanted.Contains(e.Key)).ToList())
            {
                _engines.Remove(url);
                removed.Add(engine);
            }
            if (added.Count == 0 && removed.Count == 0)
            {
                return;
            }
            Volatile.Write(ref _snapshot, [.. _engines.Values.OrderBy(e => e.Id)]);
        }
        foreach (var engine in added)
        {
            logger.LogInformation("Engine {Engine} added (from {Source})", engine.Name, sourceName);
        }
        foreach (var engine in removed)
        {
            logger.LogInformation("Engine {Engine} removed (from {Source}); {InFlight} requests in flight continue", engine.Name, sourceName, engine.InFlight);
        }
        Changed?.Invoke(added, removed);
    }
}
