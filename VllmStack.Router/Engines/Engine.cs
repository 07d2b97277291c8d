namespace VllmStack.Router.Engines;

/// <summary>One entry of an engine's <c>/v1/models</c>: a base model (no parent) or a LoRA adapter.</summary>
public sealed record ModelInfo(string Id, string? Root = null, string? Parent = null, int? MaxModelLen = null, long Created = 0, string OwnedBy = "vllm");

/// <summary>What the engine itself last reported on its <c>/metrics</c>.</summary>
public sealed record EngineLoad(double Running, double Waiting, double KvCacheUsage, double PrefixCacheHitRate, int RouterInFlightAtScrape, DateTimeOffset ScrapedAt)
{
    /// <summary>LoRA adapter slots: vLLM's <c>--max-loras</c>, the <c>max_lora</c> label of <c>vllm:lora_requests_info</c>; null when not reported.</summary>
    public int? MaxLoras { get; init; }

    public static readonly EngineLoad Unknown = new(0, 0, 0, 0, 0, DateTimeOffset.MinValue);
}

/// <summary>
/// One engine replica as the router knows it: where it is, what it serves, whether it may receive traffic,
/// and how loaded it is — both as it last reported and as the router sees live.
/// </summary>
public sealed class Engine
{
    private IReadOnlySet<string> _models = new HashSet<string>(StringComparer.Ordinal);
    private IReadOnlyList<ModelInfo> _modelInfos = [];
    private readonly Lock _modelsLock = new();
    private int _modelsVersion;
    private EngineLoad _load = EngineLoad.Unknown;
    private int _inFlight;
    private int _consecutiveGatewayFailures;
    private int _consecutive5xx;
    private int _ejections;
    private long _ejectedUntilTicks;

    public Engine(int id, Uri url)
    {
        Id = id;
        Url = url;
        Name = url.GetLeftPart(UriPartial.Authority);
    }

    /// <summary>Unique within this router process while the engine is known; policies may key state by it.</summary>
    public int Id { get; }

    public Uri Url { get; }

    /// <summary><c>http://host:port</c>: the <c>server</c> label of the router's metrics.</summary>
    public string Name { get; }

    /// <summary>Base model and adapter names from the engine's <c>/v1/models</c>; empty until first fetched.</summary>
    public IReadOnlySet<string> Models => Volatile.Read(ref _models);

    public IReadOnlyList<ModelInfo> ModelInfos => Volatile.Read(ref _modelInfos);

    public bool ModelsKnown { get; private set; }

    /// <summary>Result of the latest active <c>/health</c> probe (true until a probe says otherwise).</summary>
    public bool ProbeHealthy { get; private set; } = true;

    public EngineLoad Load => Volatile.Read(ref _load);

    /// <summary>Requests this router has sent to the engine and not yet finished.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Gateway failures since the engine last answered (see <c>Health.EngineFailureKind</c>).</summary>
    public int ConsecutiveGatewayFailures => Volatile.Read(ref _consecutiveGatewayFailures);

    /// <summary>Failures and 5xx answers of any kind since the engine last answered otherwise.</summary>
    public int Consecutive5xx => Volatile.Read(ref _consecutive5xx);

    /// <summary>Ejections since the engine last answered well; each doubles the next one's length.</summary>
    public int Ejections => Volatile.Read(ref _ejections);

    public DateTimeOffset EjectedUntil => new(Volatile.Read(ref _ejectedUntilTicks), TimeSpan.Zero);

    public bool IsEjected(DateTimeOffset now) => Volatile.Read(ref _ejectedUntilTicks) > now.UtcTicks;

    /// <summary>May receive traffic: models known, last probe healthy, not ejected after failures.</summary>
    public bool IsRoutable(DateTimeOffset now) => ModelsKnown && ProbeHealthy && !IsEjected(now);

    /// <summary>
    /// Load as leastload sees it: the router's live in-flight count, plus what the engine reported beyond the
    /// router's own requests at scrape time (other routers, direct clients). Reacts between scrapes.
    /// </summary>
    public double LoadScore
    {
        get
        {
            var load = Load;
            var external = Math.Max(0, load.Running + load.Waiting - load.RouterInFlightAtScrape);
            return InFlight + external;
        }
    }

    public bool Serves(string model) => Models.Contains(model);

    public void SetModels(IEnumerable<string> models) => SetModels(models.Select(m => new ModelInfo(m)));

    /// <summary>LoRA adapters the engine serves now (entries with a parent), by name.</summary>
    public IEnumerable<string> Adapters => ModelInfos.Where(m => m.Parent is not null).Select(m => m.Id);

    /// <summary>Records a model (an adapter just loaded) at once, before the next <c>/v1/models</c> refresh.</summary>
    public void AddModel(ModelInfo model)
    {
        lock (_modelsLock)
        {
            Publish([.. ModelInfos.Where(m => m.Id != model.Id), model]);
            _modelsVersion++;
        }
    }

    /// <summary>Forgets a model (an adapter just unloaded) at once, before the next <c>/v1/models</c> refresh.</summary>
    public void RemoveModel(string id)
    {
        lock (_modelsLock)
        {
            Publish([.. ModelInfos.Where(m => m.Id != id)]);
            _modelsVersion++;
        }
    }

    public void SetModels(IEnumerable<ModelInfo> models)
    {
        lock (_modelsLock)
        {
            Publish(models.ToList());
        }
    }

    /// <summary>Changes of the model list made here (<see cref="AddModel"/>, <see cref="RemoveModel"/>) so far.</summary>
    public int ModelsVersion => Volatile.Read(ref _modelsVersion);

    /// <summary>
    /// Sets the list fetched from the engine unless <see cref="AddModel"/> or <see cref="RemoveModel"/> changed it since
    /// <paramref name="version"/> was read: a fetch that started before an adapter load finished must not undo it.
    /// </summary>
    public bool TrySetModels(IEnumerable<ModelInfo> models, int version)
    {
        lock (_modelsLock)
        {
            if (version != _modelsVersion)
            {
                return false;
            }
            Publish(models.ToList());
            return true;
        }
    }

    private void Publish(List<ModelInfo> list)
    {
        Volatile.Write(ref _modelInfos, list);
        Volatile.Write(ref _models, new HashSet<string>(list.Select(m => m.Id), StringComparer.Ordinal));
        ModelsKnown = true;
    }

    public void SetLoad(EngineLoad load) => Volatile.Write(ref _load, load);

    public void SetProbeHealthy(bool healthy) => ProbeHealthy = healthy;

    public int BeginRequest() => Interlocked.Increment(ref _inFlight);

    public void EndRequest() => Interlocked.Decrement(ref _inFlight);

    /// <summary>Counts one engine-side failure; returns the consecutive gateway failures and 5xx answers after it.</summary>
    public (int GatewayFailures, int ServerErrors) CountFailure(bool gatewayFailure)
    {
        var gateway = 0;
        if (gatewayFailure)
        {
            gateway = Interlocked.Increment(ref _consecutiveGatewayFailures);
        }
        else
        {
            // A 5xx answer still shows the engine reachable: the gateway streak ends.
            Volatile.Write(ref _consecutiveGatewayFailures, 0);
        }
        return (gateway, Interlocked.Increment(ref _consecutive5xx));
    }

    /// <summary>The engine answered (any status below 500): its failure streaks and ejection back-off start over.</summary>
    public void CountAnswer()
    {
        if (Volatile.Read(ref _consecutiveGatewayFailures) != 0 || Volatile.Read(ref _consecutive5xx) != 0 || Volatile.Read(ref _ejections) != 0)
        {
            Volatile.Write(ref _consecutiveGatewayFailures, 0);
            Volatile.Write(ref _consecutive5xx, 0);
            Volatile.Write(ref _ejections, 0);
        }
    }

    /// <summary>Takes the engine out of routing: <paramref name="baseDelay"/> doubled per ejection without an answer in between, at most <paramref name="maxDelay"/>.</summary>
    public TimeSpan Eject(DateTimeOffset now, TimeSpan baseDelay, TimeSpan maxDelay)
    {
        var ejections = Interlocked.Increment(ref _ejections);
        var delay = TimeSpan.FromTicks(Math.Min(maxDelay.Ticks, baseDelay.Ticks * (1L << Math.Min(ejections - 1, 20))));
        Volatile.Write(ref _ejectedUntilTicks, (now + delay).UtcTicks);
        return delay;
    }

    /// <summary>Request figures the router measured for this engine (QPS, latency, TTFT, ITL).</summary>
    public Stats.RequestStatsWindow Stats { get; init; } = new(TimeSpan.FromSeconds(60));

    public override string ToString() => Name;
}
