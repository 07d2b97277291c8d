using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Threading.RateLimiting;
using VllmStack.Router.Configuration;
using VllmStack.Router.Engines;
using VllmStack.Router.Forwarding;
using VllmStack.Router.Stats;

namespace VllmStack.Router.Admission;

/// <summary>What the gate needs to know of a request: who sent it, how it ranks among that client's requests, what it may cost.</summary>
/// <param name="Client">See <see cref="AdmissionClient.Key"/>.</param>
/// <param name="Priority">Lower is served first within the client (vLLM's <c>priority</c>).</param>
/// <param name="TokenCost">Estimated tokens, for the client's tokens-per-minute limit.</param>
public sealed record AdmissionTicket(string Client, int Priority, int TokenCost);

/// <summary>A request turned away with 429: OpenAI's <c>type</c> (<c>requests</c> or <c>tokens</c>), the metric reason, and when to retry.</summary>
public sealed record AdmissionRejection(string Reason, string Type, string Message, TimeSpan RetryAfter);

/// <summary>
/// Admission control per model: a request is let through while some engine of its model has room
/// (<see cref="EngineCapacity"/>); otherwise it waits in the model's <see cref="FairQueue{T}"/> and is let through when a
/// request of the model finishes and frees a slot (and, as a backstop for room that appears without a completion — a
/// scrape, a new engine — on a short timer). A full queue, a wait past <see cref="AdmissionOptions.MaxQueueWait"/> or a
/// client over its own limits is answered 429; a client that leaves while queued leaves the queue at once.
/// </summary>
public sealed class AdmissionGate : IDisposable
{
    private static readonly double[] WaitBuckets = [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];

    private readonly AdmissionOptions _options;
    private readonly RouterOptions _routerOptions;
    private readonly EngineRegistry _registry;
    private readonly ILogger<AdmissionGate> _logger;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, ModelQueue> _models = new(StringComparer.Ordinal);
    private readonly Dictionary<int, EngineCapacity> _capacity = [];
    private readonly PartitionedRateLimiter<string>? _concurrency;
    private readonly PartitionedRateLimiter<string>? _tokens;
    private readonly Timer? _backstop;
    private readonly Meter _meter = new(RouterMetrics.MeterName + ".Admission");
    private readonly Counter<long> _decisions;
    private readonly Histogram<double> _wait;

    public AdmissionGate(RouterOptions options, EngineRegistry registry, ILogger<AdmissionGate> logger)
    {
        _options = options.Admission;
        _routerOptions = options;
        _registry = registry;
        _logger = logger;
        if (_options.ClientMaxConcurrency > 0)
        {
            _concurrency = PartitionedRateLimiter.Create<string, string>(client => RateLimitPartition.GetConcurrencyLimiter(client,
                _ => new ConcurrencyLimiterOptions { PermitLimit = _options.ClientMaxConcurrency, QueueLimit = 0 }));
        }
        if (_options.ClientTokensPerMinute > 0)
        {
            _tokens = PartitionedRateLimiter.Create<string, string>(client => RateLimitPartition.GetTokenBucketLimiter(client,
                _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = _options.ClientTokensPerMinute,
                    // About a second per refill, at exactly the configured rate (a whole number per second would round it down).
                    TokensPerPeriod = RefillTokens(_options.ClientTokensPerMinute),
                    ReplenishmentPeriod = TimeSpan.FromMinutes((double)RefillTokens(_options.ClientTokensPerMinute) / _options.ClientTokensPerMinute),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                }));
        }
        if (_options.Enabled)
        {
            _backstop = new Timer(_ => DispatchAll(), null, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(100));
        }
        _decisions = _meter.CreateCounter<long>("vllmstack:router_admission_decisions", null,
            "Admission decisions per model: admitted (at once or from the queue), rejected with 429 (by reason), or abandoned by the client while queued.");
        _wait = _meter.CreateHistogram<double>("vllmstack:router_queue_wait_seconds", "s",
            "Time admitted requests waited in the router's admission queue, per model (0 when admitted at once).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = WaitBuckets });
        _meter.CreateObservableGauge("vllmstack:router_queue_depth", () => QueuedPerModel().Select(p =>
            new Measurement<long>(p.Value, new KeyValuePair<string, object?>("model", p.Key))), null, "Requests waiting in the router's admission queue, per model.");
    }

    /// <summary>Requests queued per model (models whose queue has been used, zeros included).</summary>
    public IReadOnlyDictionary<string, int> QueuedPerModel()
    {
        lock (_lock)
        {
            return _models.ToDictionary(p => p.Key, p => p.Value.Queue.Count, StringComparer.Ordinal);
        }
    }

    /// <summary>
    /// Lets the request through at once, after a wait, or not: a lease to dispose when the request is over, a rejection,
    /// or neither when the client left while queued. With admission control off and no client limits, a no-op lease at once.
    /// </summary>
    public ValueTask<(AdmissionLease? Lease, AdmissionRejection? Rejection)> AdmitAsync(string model, HttpContext context, ClientRequest request, CancellationToken aborted) =>
        _options.Enabled || _concurrency is not null || _tokens is not null
            ? new(AdmitAsync(model, AdmissionClient.Ticket(context, request, _routerOptions), aborted))
            : new((AdmissionLease.None, null));

    /// <inheritdoc cref="AdmitAsync(string, HttpContext, ClientRequest, CancellationToken)"/>
    public async Task<(AdmissionLease? Lease, AdmissionRejection? Rejection)> AdmitAsync(string model, AdmissionTicket ticket, CancellationToken aborted)
    {
        var permits = new List<RateLimitLease>(2);
        var rejection = AcquireClientPermits(ticket, permits);
        if (rejection is not null || !_options.Enabled)
        {
            return rejection is null ? (new AdmissionLease(this, null, permits), null) : (null, Reject(model, rejection, permits));
        }

        ModelQueue queue;
        Waiter waiter;
        lock (_lock)
        {
            queue = QueueOf(model);
            if (queue.Queue.Count == 0 && Room(model, queue) >= 1)
            {
                queue.Active++;
                Admitted(model, "immediate", 0);
                return (new AdmissionLease(this, queue, permits), null);
            }
            if (queue.Queue.Count >= _options.MaxQueueSize)
            {
                return (null, Reject(model, new AdmissionRejection("queue_full", "requests",
                    $"Too many requests for `{model}`: all its engines are busy and {queue.Queue.Count} requests are already queued. Please try again in {RetryAfter(queue).TotalSeconds:F0}s.",
                    RetryAfter(queue)), permits));
            }
            waiter = new Waiter(Stopwatch.GetTimestamp());
            waiter.Entry = queue.Queue.Enqueue(ticket.Client, ticket.Priority, waiter);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(aborted);
        deadline.CancelAfter(TimeSpan.FromSeconds(_options.MaxQueueWait));
        await using (deadline.Token.Register(() => Abandon(queue, waiter)))
        {
            var admitted = await waiter.Outcome.Task.ConfigureAwait(false);
            if (admitted)
            {
                var waited = Stopwatch.GetElapsedTime(waiter.Enqueued).TotalSeconds;
                lock (_lock)
                {
                    queue.RecentWait = queue.RecentWait * 0.8 + waited * 0.2;
                }
                Admitted(model, "queued", waited);
                return (new AdmissionLease(this, queue, permits), null);
            }
        }
        if (aborted.IsCancellationRequested)
        {
            _decisions.Add(1, Tag("model", model), Tag("decision", "abandoned"), Tag("reason", "client_disconnected"));
            Dispose(permits);
            return (null, null);
        }
        return (null, Reject(model, new AdmissionRejection("queue_timeout", "requests",
            $"Rate limit reached for `{model}`: the request waited {_options.MaxQueueWait:0.#}s in the router's queue without an engine freeing up. Please try again in {RetryAfter(queue).TotalSeconds:F0}s.",
            RetryAfter(queue)), permits));
    }

    /// <summary>Room for more requests of <paramref name="model"/> across its routable engines, less those admitted but not yet on an engine.</summary>
    private double Room(string model, ModelQueue queue)
    {
        var now = DateTimeOffset.UtcNow;
        double room = 0;
        var onEngines = 0;
        var any = false;
        foreach (var engine in _registry.Engines)
        {
            if (!engine.Serves(model) || !engine.IsRoutable(now))
            {
                continue;
            }
            any = true;
            if (!_capacity.TryGetValue(engine.Id, out var capacity))
            {
                _capacity[engine.Id] = capacity = new EngineCapacity();
            }
            room += Math.Max(0, capacity.Room(engine, _options));
            onEngines += engine.InFlight;
        }
        // No routable engine: let requests through to the proxy's own answer (503) rather than queue them for nothing.
        return any ? room - Math.Max(0, queue.Active - onEngines) : double.PositiveInfinity;
    }

    /// <summary>Dispatches queued requests of every model while their engines have room.</summary>
    private void DispatchAll()
    {
        lock (_lock)
        {
            if (_capacity.Count > 2 * _registry.Engines.Count + 16)
            {
                // Engines come and go (scaling, discovery): forget the ones that are gone.
                var known = _registry.Engines.Select(e => e.Id).ToHashSet();
                foreach (var id in _capacity.Keys.Where(id => !known.Contains(id)).ToList())
                {
                    _capacity.Remove(id);
                }
            }
            foreach (var (model, queue) in _models)
            {
                if (queue.Queue.Count == 0)
                {
                    continue;
                }
                var room = Room(model, queue);
                while (room >= 1 && queue.Queue.TryDequeue(out var waiter))
                {
                    queue.Active++;
                    room--;
                    waiter.Outcome.TrySetResult(true);
                }
            }
        }
    }

    private void Abandon(ModelQueue queue, Waiter waiter)
    {
        lock (_lock)
        {
            if (waiter.Entry is { } entry && queue.Queue.Remove(entry))
            {
                waiter.Outcome.TrySetResult(false);
            }
        }
    }

    internal void Release(ModelQueue? queue, List<RateLimitLease> permits)
    {
        Dispose(permits);
        if (queue is null)
        {
            return;
        }
        lock (_lock)
        {
            queue.Active--;
        }
        // A finished request frees a slot: hand it to the next queued request now, not at the next timer tick.
        DispatchAll();
    }

    private AdmissionRejection? AcquireClientPermits(AdmissionTicket ticket, List<RateLimitLease> permits)
    {
        if (_concurrency is not null)
        {
            var lease = _concurrency.AttemptAcquire(ticket.Client);
            if (!lease.IsAcquired)
            {
                lease.Dispose();
                return new AdmissionRejection("client_concurrency", "requests",
                    $"Rate limit reached: this client already has as many requests in progress as its limit allows ({_options.ClientMaxConcurrency}). Please try again in 1s.", TimeSpan.FromSeconds(1));
            }
            permits.Add(lease);
        }
        if (_tokens is not null)
        {
            if (ticket.TokenCost > _options.ClientTokensPerMinute)
            {
                return new AdmissionRejection("client_tokens", "tokens",
                    $"Request too large: about {ticket.TokenCost} tokens, more than this client's limit of {_options.ClientTokensPerMinute} tokens per minute.", TimeSpan.FromSeconds(60));
            }
            var lease = _tokens.AttemptAcquire(ticket.Client, Math.Max(1, ticket.TokenCost));
            if (!lease.IsAcquired)
            {
                var after = lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? retryAfter : TimeSpan.FromSeconds(1);
                lease.Dispose();
                return new AdmissionRejection("client_tokens", "tokens",
                    $"Rate limit reached on tokens per minute: limit {_options.ClientTokensPerMinute}, requested about {ticket.TokenCost}. Please try again in {Math.Ceiling(after.TotalSeconds):F0}s.", after);
            }
            permits.Add(lease);
        }
        return null;
    }

    private AdmissionRejection Reject(string model, AdmissionRejection rejection, List<RateLimitLease> permits)
    {
        Dispose(permits);
        _decisions.Add(1, Tag("model", model), Tag("decision", "rejected"), Tag("reason", rejection.Reason));
        _logger.LogDebug("Rejected a request for {Model}: {Reason}", model, rejection.Reason);
        return rejection;
    }

    private void Admitted(string model, string reason, double waited)
    {
        _decisions.Add(1, Tag("model", model), Tag("decision", "admitted"), Tag("reason", reason));
        _wait.Record(waited, Tag("model", model));
    }

    /// <summary>What queued requests have lately waited, at least a second: a fair guess of when one more would get in.</summary>
    /// <summary>Tokens per refill of a tokens-per-minute bucket: a second's worth, rounded up.</summary>
    internal static int RefillTokens(int tokensPerMinute) => Math.Max(1, (tokensPerMinute + 59) / 60);

    private TimeSpan RetryAfter(ModelQueue queue) => TimeSpan.FromSeconds(Math.Clamp(Math.Ceiling(queue.RecentWait), 1, Math.Max(1, _options.MaxQueueWait)));

    private ModelQueue QueueOf(string model)
    {
        if (!_models.TryGetValue(model, out var queue))
        {
            _models[model] = queue = new ModelQueue();
        }
        return queue;
    }

    private static void Dispose(List<RateLimitLease> permits)
    {
        foreach (var permit in permits)
        {
            permit.Dispose();
        }
        permits.Clear();
    }

    private static KeyValuePair<string, object?> Tag(string key, string value) => new(key, value);

    public void Dispose()
    {
        _backstop?.Dispose();
        _concurrency?.Dispose();
        _tokens?.Dispose();
        _meter.Dispose();
    }

    /// <summary>One model's queue and the requests it has let through that are not over yet.</summary>
    internal sealed class ModelQueue
    {
        public FairQueue<Waiter> Queue { get; } = new();

        public int Active { get; set; }

        /// <summary>Moving average of recent queue waits, in seconds (for <c>Retry-After</c>).</summary>
        public double RecentWait { get; set; }
    }

    internal sealed class Waiter(long enqueued)
    {
        public long Enqueued { get; } = enqueued;

        public FairQueue<Waiter>.Entry? Entry { get; set; }

        /// <summary>True: admitted; false: left the queue (client gone or waited too long).</summary>
        public TaskCompletionSource<bool> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>A request let through the gate; disposing it (once, when the request is over) frees its slot and client permits.</summary>
public sealed class AdmissionLease : IDisposable
{
    /// <summary>The lease of a request that nothing limits: disposing it does nothing.</summary>
    internal static readonly AdmissionLease None = new(null!, null, []) { _disposed = 1 };

    private readonly AdmissionGate _gate;
    private readonly AdmissionGate.ModelQueue? _queue;
    private readonly List<RateLimitLease> _permits;
    private int _disposed;

    internal AdmissionLease(AdmissionGate gate, AdmissionGate.ModelQueue? queue, List<RateLimitLease> permits)
    {
        _gate = gate;
        _queue = queue;
        _permits = permits;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _gate.Release(_queue, _permits);
        }
    }
}
