using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using VllmStack.Router.Configuration;
using VllmStack.Router.Engines;
using VllmStack.Router.Health;
using VllmStack.Router.Stats;

namespace VllmStack.Router.Lora;

/// <summary>What a request for an adapter may be routed to, or why it cannot be served now.</summary>
/// <param name="Engines">Engines holding the adapter (never empty when <paramref name="Error"/> is null).</param>
/// <param name="Waited">The request waited for a load.</param>
public sealed record LoraRouting(IReadOnlyList<Engine> Engines, LoraLoadError? Error = null, bool Waited = false);

/// <summary>Why an adapter could not be made available: the client gets 503 with this, and no engine is blamed.</summary>
/// <param name="Code">OpenAI error code: <c>lora_adapter_load_failed</c> or <c>lora_adapter_load_timeout</c>.</param>
public sealed record LoraLoadError(string Code, string Message, TimeSpan RetryAfter);

/// <summary>
/// Keeps LoRA adapters loaded where the demand is (issue 17), through vLLM's runtime API (<c>/v1/load_lora_adapter</c>,
/// <c>/v1/unload_lora_adapter</c>). It lives in the router because the router sees each request (the one to hold while
/// its adapter loads), each engine's load, and each engine's <c>/v1/models</c> (what is loaded) — the engines' own lists
/// are the truth every router replica shares, so replicas need no coordination beyond them.
/// <list type="bullet">
/// <item>A request for an adapter no engine holds waits (bounded, <see cref="LoraOptions.LoadTimeout"/>) while it is loaded
/// onto the engine of its base model with a free slot and the least load; concurrent requests share one load.</item>
/// <item>An engine's slots are its <c>--max-loras</c> (reported in <c>vllm:lora_requests_info</c>); a full engine first
/// unloads its least recently used adapter that has no request in flight.</item>
/// <item>A hot adapter — its least-loaded holder far busier than the least-loaded engine of its base model (an imbalance
/// guard like prefix routing's) — is loaded onto one more engine in the background.</item>
/// <item>An engine that comes back without any of the adapters placed on it (a restart) gets them back.</item>
/// <item>A failed load is the adapter's problem, not the engine's: it is remembered for a short while and answered 503.</item>
/// </list>
/// </summary>
public sealed partial class LoraAdapterManager : BackgroundService
{
    /// <summary>How long a just-loaded adapter is kept from being unloaded for another (its waiting requests are on their way).</summary>
    private static readonly TimeSpan JustLoaded = TimeSpan.FromSeconds(1);

    private readonly EngineRegistry _registry;
    private readonly LoraCatalog _catalog;
    private readonly EngineControlClient _client;
    private readonly LoraOptions _options;
    private readonly RouterOptions _routerOptions;
    private readonly RouterMetrics _metrics;
    private readonly ILogger<LoraAdapterManager> _logger;
    private readonly ConcurrentDictionary<Uri, EngineAdapters> _engines = new();
    private readonly ConcurrentDictionary<(Uri Engine, string Adapter), Task<string?>> _loads = new();
    private readonly ConcurrentDictionary<string, (DateTimeOffset Until, string Reason)> _failures = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _replicating = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<(Engine Target, Task<string?> Load)>> _coldLoads = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();

    public LoraAdapterManager(EngineRegistry registry, LoraCatalog catalog, EngineControlClient client, RouterOptions options, RouterMetrics metrics,
        ILogger<LoraAdapterManager> logger)
    {
        _registry = registry;
        _catalog = catalog;
        _client = client;
        _options = options.Lora;
        _routerOptions = options;
        _metrics = metrics;
        _logger = logger;
        _catalog.Changed += removed =>
        {
            foreach (var adapter in removed)
            {
                _ = UnloadRemovedAsync(adapter.Name);
            }
        };
    }

    /// <summary>
    /// Finds or makes room for <paramref name="adapter"/> among <paramref name="baseEngines"/> (routable engines of its base
    /// model, not empty). <paramref name="choose"/> is the routing policy, used by <see cref="LoraPlacement.OnMiss"/>.
    /// </summary>
    public async ValueTask<LoraRouting> PrepareAsync(LoraAdapter adapter, IReadOnlyList<Engine> baseEngines,
        Func<IReadOnlyList<Engine>, ValueTask<Engine>> choose, CancellationToken cancellationToken)
    {
        _metrics.LoraRequest(adapter.Name);
        var holders = baseEngines.Where(e => e.Serves(adapter.Name)).ToList();
        Engine? landed = null;
        if (_options.PlacementMode == LoraPlacement.OnMiss)
        {
            landed = await choose(baseEngines).ConfigureAwait(false);
            if (landed.Serves(adapter.Name))
            {
                return new LoraRouting([landed]);
            }
        }
        else if (holders.Count > 0)
        {
            ReplicateIfHot(adapter, holders, baseEngines);
            // Wanted now: not the one a load decided before this request reaches its engine should unload.
            var now = Stopwatch.GetTimestamp();
            foreach (var holder in holders)
            {
                var state = StateOf(holder.Url);
                lock (state)
                {
                    state.LastUsed[adapter.Name] = now;
                }
            }
            return new LoraRouting(holders);
        }
        if (_failures.TryGetValue(adapter.Name, out var failure) && failure.Until > DateTimeOffset.UtcNow)
        {
            return new LoraRouting([], LoadFailed(adapter, failure.Reason, failure.Until - DateTimeOffset.UtcNow));
        }
        if (landed is not null)
        {
            return await WaitForLoadAsync(adapter, landed, LoadAsync(adapter, landed, "on_miss"), cancellationToken).ConfigureAwait(false);
        }
        var untried = baseEngines.ToList();
        while (true)
        {
            // Requests arriving while the adapter loads wait for the same load, rather than each loading it somewhere.
            var lazy = _coldLoads.GetOrAdd(adapter.Name, _ => new Lazy<(Engine, Task<string?>)>(() =>
            {
                var target = Target(adapter, untried);
                var load = LoadAsync(adapter, target, "demand");
                load.ContinueWith(_ => _coldLoads.TryRemove(adapter.Name, out Lazy<(Engine, Task<string?>)>? _), TaskScheduler.Default);
                return (target, load);
            }));
            var (target, load) = lazy.Value;
            var routing = await WaitForLoadAsync(adapter, target, load, cancellationToken).ConfigureAwait(false);
            untried.RemoveAll(e => e.Id == target.Id);
            // An engine that did not answer (it died, and the router has not noticed yet) is not the adapter's fault: another
            // engine gets the load. A refusal (remembered in _failures) or the wait running out is the answer.
            if (routing.Error is not { Code: "lora_adapter_load_failed" } || _failures.ContainsKey(adapter.Name)
                || untried.Count(e => !e.Serves(adapter.Name)) == 0 || cancellationToken.IsCancellationRequested)
            {
                return routing;
            }
            _coldLoads.TryRemove(new KeyValuePair<string, Lazy<(Engine Target, Task<string?> Load)>>(adapter.Name, lazy));
        }
    }

    /// <summary>A request of <paramref name="adapter"/> was sent to <paramref name="engine"/>: the adapter is in use there.</summary>
    public void Started(Engine engine, string adapter)
    {
        var state = StateOf(engine.Url);
        lock (state)
        {
            state.InFlight[adapter] = state.InFlight.GetValueOrDefault(adapter) + 1;
            state.LastUsed[adapter] = Stopwatch.GetTimestamp();
        }
    }

    public void Finished(Engine engine, string adapter)
    {
        var state = StateOf(engine.Url);
        lock (state)
        {
            if (state.InFlight.TryGetValue(adapter, out var count))
            {
                if (count <= 1)
                {
                    state.InFlight.Remove(adapter);
                }
                else
                {
                    state.InFlight[adapter] = count - 1;
                }
            }
            state.LastUsed[adapter] = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Unloads an adapter from every engine holding it (it left the catalogue, or its definition changed).</summary>
    private async Task UnloadRemovedAsync(string adapter)
    {
        try
        {
            await UnloadEverywhereAsync(adapter).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The router is stopping.
        }
        catch (Exception e)
        {
            LogUnexpected(e, adapter, "every engine");
        }
    }

    private async Task UnloadEverywhereAsync(string adapter)
    {
        foreach (var engine in _registry.Engines.Where(e => e.Serves(adapter)).ToList())
        {
            var state = StateOf(engine.Url);
            await state.Lock.WaitAsync(_stopping.Token).ConfigureAwait(false);
            try
            {
                await UnloadAsync(engine, adapter, "removed", _stopping.Token).ConfigureAwait(false);
            }
            finally
            {
                state.Lock.Release();
            }
        }
        _failures.TryRemove(adapter, out _);
    }

    private async ValueTask<LoraRouting> WaitForLoadAsync(LoraAdapter adapter, Engine target, Task<string?> load, CancellationToken cancellationToken)
    {
        _metrics.LoraLoadWait(adapter.Name);
        try
        {
            var error = await load.WaitAsync(TimeSpan.FromSeconds(_options.LoadTimeout), cancellationToken).ConfigureAwait(false);
            return error is null
                ? new LoraRouting([target], Waited: true)
                : new LoraRouting([], LoadFailed(adapter, error, TimeSpan.FromSeconds(Math.Max(1, _options.FailureMemory))), Waited: true);
        }
        catch (TimeoutException)
        {
            // The load goes on; a later request finds the adapter in place.
            return new LoraRouting([], new LoraLoadError("lora_adapter_load_timeout",
                $"The LoRA adapter `{adapter.Name}` is still being loaded onto an engine after {_options.LoadTimeout:0.#} s; retry shortly.",
                TimeSpan.FromSeconds(5)), Waited: true);
        }
    }

    private static LoraLoadError LoadFailed(LoraAdapter adapter, string reason, TimeSpan retryAfter) =>
        new("lora_adapter_load_failed", $"The LoRA adapter `{adapter.Name}` could not be loaded from `{adapter.Source}`: {reason}", retryAfter);

    /// <summary>
    /// The engine to load onto: the least-loaded one with a free slot; when every engine is full, the one whose least recently
    /// used adapter has been idle longest (the pool's slots then act as one LRU cache, so that an adapter in use elsewhere is
    /// not unloaded for a cold one), among the engines within the imbalance guard of the least loaded.
    /// </summary>
    private Engine Target(LoraAdapter adapter, IReadOnlyList<Engine> baseEngines)
    {
        var candidates = baseEngines.Where(e => !e.Serves(adapter.Name)).ToList();
        // Loads already on their way to an engine take its slots (and stall it) too: cold adapters arriving together spread out.
        var free = candidates.Where(e => e.Adapters.Count() + StateOf(e.Url).PendingLoads < SlotsOf(e)).ToList();
        if (free.Count > 0)
        {
            return free.OrderBy(e => e.LoadScore).ThenBy(e => e.Adapters.Count()).ThenBy(e => e.Id).First();
        }
        var least = candidates.Min(e => e.LoadScore);
        return candidates.Where(e => !Imbalanced(e.LoadScore, least))
            .OrderBy(e => StateOf(e.Url).PendingLoads)
            .ThenBy(e => Victim(e, adapter.Name)?.LastUsed ?? long.MaxValue)
            .ThenBy(e => e.LoadScore)
            .ThenBy(e => e.Id)
            .First();
    }

    /// <summary>The imbalance guard of <see cref="LoraOptions.ImbalanceAbsolute"/> and <see cref="LoraOptions.ImbalanceRatio"/>.</summary>
    private bool Imbalanced(double score, double least) =>
        score - least > _options.ImbalanceAbsolute && score > _options.ImbalanceRatio * (least + 1);

    /// <summary>
    /// The adapter a full engine would unload for <paramref name="incoming"/>: the least recently used one, preferring those
    /// without requests in flight and not just loaded (the requests that waited for that load may not have reached the engine
    /// yet); only adapters of the catalogue (those started with the engine, <c>--lora-modules</c>, stay).
    /// </summary>
    private (string Name, long LastUsed)? Victim(Engine engine, string incoming)
    {
        var state = StateOf(engine.Url);
        var fresh = DateTimeOffset.UtcNow - JustLoaded;
        lock (state)
        {
            return engine.Adapters.Where(a => a != incoming && _catalog.Adapters.ContainsKey(a))
                .Select(a => (Name: a, LastUsed: state.LastUsed.GetValueOrDefault(a),
                    Busy: state.InFlight.ContainsKey(a) || (state.Placed.TryGetValue(a, out var placed) && placed > fresh)))
                .OrderBy(a => a.Busy ? 1 : 0)
                .ThenBy(a => a.LastUsed)
                .Select(a => ((string, long)?)(a.Name, a.Busy ? long.MaxValue - 1 : a.LastUsed))
                .FirstOrDefault();
        }
    }

    private int SlotsOf(Engine engine) => engine.Load.MaxLoras ?? _options.MaxLoras;

    private void ReplicateIfHot(LoraAdapter adapter, IReadOnlyList<Engine> holders, IReadOnlyList<Engine> baseEngines)
    {
        if (holders.Count >= baseEngines.Count)
        {
            return;
        }
        if (!Imbalanced(holders.Min(e => e.LoadScore), baseEngines.Min(e => e.LoadScore)) || !_replicating.TryAdd(adapter.Name, 0))
        {
            return;
        }
        var target = Target(adapter, baseEngines);
        LoadAsync(adapter, target, "replicate").ContinueWith(_ => _replicating.TryRemove(adapter.Name, out byte _), TaskScheduler.Default);
    }

    /// <summary>Loads onto one engine; concurrent callers for the same engine and adapter share the load. Returns null or why it failed.</summary>
    private Task<string?> LoadAsync(LoraAdapter adapter, Engine engine, string reason)
    {
        var key = (engine.Url, adapter.Name);
        if (_loads.TryGetValue(key, out var running))
        {
            return running;
        }
        var created = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        var winner = _loads.GetOrAdd(key, created.Task);
        if (winner != created.Task)
        {
            return winner;
        }
        var state = StateOf(engine.Url);
        Interlocked.Increment(ref state.PendingLoadCount);
        _ = Task.Run(async () =>
        {
            string? error;
            try
            {
                error = await LoadNowAsync(adapter, engine, reason, _stopping.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                error = "the router is stopping";
            }
            catch (Exception e)
            {
                LogUnexpected(e, adapter.Name, engine.Name);
                error = e.Message;
            }
            Interlocked.Decrement(ref state.PendingLoadCount);
            _loads.TryRemove(key, out _);
            created.SetResult(error);
        });
        return created.Task;
    }

    private async Task<string?> LoadNowAsync(LoraAdapter adapter, Engine engine, string reason, CancellationToken cancellationToken)
    {
        var state = StateOf(engine.Url);
        await state.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (engine.Serves(adapter.Name))
            {
                return null;
            }
            await MakeRoomAsync(engine, state, adapter.Name, cancellationToken).ConfigureAwait(false);
            var started = Stopwatch.GetTimestamp();
            var body = JsonSerializer.Serialize(new Dictionary<string, string> { ["lora_name"] = adapter.Name, ["lora_path"] = adapter.Source });
            var (status, answer) = await _client.PostJsonAsync(engine.Url, "v1/load_lora_adapter", body,
                TimeSpan.FromSeconds(_options.EngineCallTimeout), cancellationToken).ConfigureAwait(false);
            // vLLM answers 400 "...has already been loaded" when another router (or an earlier, lost answer) loaded it.
            var alreadyLoaded = status == 400 && answer.Contains("already been loaded", StringComparison.OrdinalIgnoreCase);
            var loaded = status is >= 200 and < 300 || alreadyLoaded;
            var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
            _metrics.LoraLoad(reason, alreadyLoaded ? "already_loaded" : loaded ? "ok" : "failed", seconds);
            if (!loaded)
            {
                var why = status == 0 ? $"engine {engine.Name} did not answer ({answer})" : $"engine {engine.Name} answered {status}: {EngineMessage(answer)}";
                LogLoadFailed(adapter.Name, engine.Name, reason, why);
                // A refusal (4xx: no such adapter, bad rank, …) will not change on retry for a while; an unreachable engine may.
                if (status is >= 400 and < 500)
                {
                    _failures[adapter.Name] = (DateTimeOffset.UtcNow.AddSeconds(_options.FailureMemory), why);
                }
                return why;
            }
            _failures.TryRemove(adapter.Name, out _);
            engine.AddModel(new ModelInfo(adapter.Name, adapter.Source, adapter.BaseModel));
            lock (state)
            {
                state.Placed[adapter.Name] = DateTimeOffset.UtcNow;
                state.LastUsed[adapter.Name] = Stopwatch.GetTimestamp();
            }
            LogLoaded(adapter.Name, engine.Name, reason, seconds);
            return null;
        }
        finally
        {
            state.Lock.Release();
        }
    }

    /// <summary>Unloads least recently used adapters until a slot is free; adapters with requests in flight stay unless nothing else can go.</summary>
    private async Task MakeRoomAsync(Engine engine, EngineAdapters state, string incoming, CancellationToken cancellationToken)
    {
        var slots = SlotsOf(engine);
        while (engine.Adapters.Count() >= slots)
        {
            var victim = Victim(engine, incoming)?.Name;
            if (victim is null || !await UnloadAsync(engine, victim, "lru", cancellationToken).ConfigureAwait(false))
            {
                return; // nothing we may unload: the engine takes one adapter more than its slots (vLLM swaps them in its CPU cache)
            }
        }
    }

    private async Task<bool> UnloadAsync(Engine engine, string adapter, string reason, CancellationToken cancellationToken)
    {
        // Out of routing first: a request routed here while the unload is under way would meet a 404.
        var info = engine.ModelInfos.FirstOrDefault(m => m.Id == adapter);
        engine.RemoveModel(adapter);
        var body = JsonSerializer.Serialize(new Dictionary<string, string> { ["lora_name"] = adapter });
        var (status, answer) = await _client.PostJsonAsync(engine.Url, "v1/unload_lora_adapter", body,
            TimeSpan.FromSeconds(_options.EngineCallTimeout), cancellationToken).ConfigureAwait(false);
        // 404: the engine no longer has it (restarted, or another router unloaded it) — the slot is free either way.
        if (status is not (>= 200 and < 300 or 404))
        {
            if (info is not null)
            {
                engine.AddModel(info); // still loaded there: routable again
            }
            LogUnloadFailed(adapter, engine.Name, status == 0 ? answer : $"{status}: {EngineMessage(answer)}");
            return false;
        }
        var state = StateOf(engine.Url);
        lock (state)
        {
            state.Placed.Remove(adapter);
        }
        _metrics.LoraUnload(reason);
        LogUnloaded(adapter, engine.Name, reason);
        return true;
    }

    /// <summary>Gives engines back the adapters placed on them when they come back without any (a restart).</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var linked = stoppingToken.Register(_stopping.Cancel);
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(_options.ReconcileInterval));
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            var now = DateTimeOffset.UtcNow;
            // A placement younger than a model refresh (and its call) may not show in /v1/models yet; refreshes that started
            // before it are discarded (Engine.TrySetModels).
            var settled = TimeSpan.FromSeconds(_routerOptions.ModelRefreshInterval + _routerOptions.ControlTimeout);
            foreach (var engine in _registry.Engines)
            {
                if (!engine.IsRoutable(now) || !_engines.TryGetValue(engine.Url, out var state))
                {
                    continue;
                }
                List<LoraAdapter> lost;
                lock (state)
                {
                    var placed = state.Placed.Where(p => now - p.Value > settled).Select(p => p.Key).ToList();
                    if (placed.Count == 0 || placed.Any(engine.Serves))
                    {
                        // Some are still there: another router unloaded the rest (it needed the slot); forget those.
                        foreach (var gone in placed.Where(a => !engine.Serves(a)))
                        {
                            state.Placed.Remove(gone);
                        }
                        continue;
                    }
                    lost = [.. placed.Select(a => _catalog.TryGet(a, out var adapter) ? adapter : null).OfType<LoraAdapter>()];
                    // Placements too young to judge stay (a later round restores them if they are gone too).
                    foreach (var gone in placed)
                    {
                        state.Placed.Remove(gone);
                    }
                }
                if (lost.Count > 0)
                {
                    LogRestoring(engine.Name, lost.Count);
                    foreach (var adapter in lost)
                    {
                        _ = LoadAsync(adapter, engine, "restore");
                    }
                }
            }
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public override void Dispose()
    {
        _stopping.Dispose();
        base.Dispose();
    }

    private EngineAdapters StateOf(Uri engine) => _engines.GetOrAdd(engine, _ => new EngineAdapters());

    /// <summary>The <c>message</c> of an OpenAI-style error body, else the body (shortened).</summary>
    private static string EngineMessage(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("error", out var error)
                && error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String)
            {
                return message.GetString()!;
            }
        }
        catch (JsonException)
        {
        }
        return body.Length > 300 ? body[..300] + "…" : body;
    }

    /// <summary>What this router knows of the adapters on one engine (by URL, so that a restarted engine finds it again).</summary>
    private sealed class EngineAdapters
    {
        /// <summary>Serialises loads and unloads on the engine, so that two loads never take the same free slot.</summary>
        public SemaphoreSlim Lock { get; } = new(1, 1);

        public Dictionary<string, int> InFlight { get; } = new(StringComparer.Ordinal);

        /// <summary>Stopwatch timestamps of each adapter's last use here.</summary>
        public Dictionary<string, long> LastUsed { get; } = new(StringComparer.Ordinal);

        /// <summary>Loads decided for this engine and not finished (a field for <see cref="Interlocked"/>).</summary>
        public int PendingLoadCount;

        public int PendingLoads => Volatile.Read(ref PendingLoadCount);

        /// <summary>Adapters this router loaded here and has not unloaded, with when.</summary>
        public Dictionary<string, DateTimeOffset> Placed { get; } = new(StringComparer.Ordinal);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "LoRA adapter {Adapter} loaded onto {Engine} ({Reason}) in {Seconds:0.###} s")]
    private partial void LogLoaded(string adapter, string engine, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "LoRA adapter {Adapter} could not be loaded onto {Engine} ({Reason}): {Why}")]
    private partial void LogLoadFailed(string adapter, string engine, string reason, string why);

    [LoggerMessage(Level = LogLevel.Information, Message = "LoRA adapter {Adapter} unloaded from {Engine} ({Reason})")]
    private partial void LogUnloaded(string adapter, string engine, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "LoRA adapter {Adapter} could not be unloaded from {Engine}: {Why}")]
    private partial void LogUnloadFailed(string adapter, string engine, string why);

    [LoggerMessage(Level = LogLevel.Information, Message = "Engine {Engine} came back without the {Count} LoRA adapters placed on it (restarted); loading them again")]
    private partial void LogRestoring(string engine, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "Loading or unloading LoRA adapter {Adapter} on {Engine} failed unexpectedly")]
    private partial void LogUnexpected(Exception exception, string adapter, string engine);
}
