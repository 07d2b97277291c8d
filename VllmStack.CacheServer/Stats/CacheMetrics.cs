using System.Diagnostics.Metrics;
using VllmStack.CacheServer.Index;

namespace VllmStack.CacheServer.Stats;

/// <summary>The cache server's metrics: lookups and their hit tokens, index size, pool traffic and Redis latency.</summary>
public sealed class CacheMetrics : IDisposable
{
    public const string MeterName = "VllmStack.CacheServer";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _lookups;
    private readonly Counter<long> _queriedTokens;
    private readonly Counter<long> _hitTokens;
    private readonly Counter<long> _events;
    private readonly Counter<long> _poolOperations;
    private readonly Counter<long> _poolDropped;
    private readonly Counter<long> _poolEvictions;
    private readonly Histogram<double> _redisLatency;
    private readonly Histogram<double> _lookupLatency;

    private long _poolBytes;
    private long _poolChunks;

    public CacheMetrics(KvIndex index)
    {
        _meter.CreateObservableGauge("vllmstack:kv_pool_bytes", () => Interlocked.Read(ref _poolBytes), "By", "Bytes of KV chunks in the pool (refreshed every few seconds).");
        _meter.CreateObservableGauge("vllmstack:kv_pool_chunks", () => Interlocked.Read(ref _poolChunks), null, "KV chunks in the pool (refreshed every few seconds).");
        _lookups = _meter.CreateCounter<long>("vllmstack:kv_lookups", null, "Prefix lookups answered.");
        _queriedTokens = _meter.CreateCounter<long>("vllmstack:kv_lookup_queried_tokens", null, "Tokens asked about in lookups.");
        _hitTokens = _meter.CreateCounter<long>("vllmstack:kv_lookup_hit_tokens", null, "Leading tokens found, by where: local (an engine's cache) or pool.");
        _events = _meter.CreateCounter<long>("vllmstack:kv_events", null, "Block events reported by engines, by kind (stored, evicted).");
        _poolOperations = _meter.CreateCounter<long>("vllmstack:kv_pool_operations", null, "KV chunk pool operations, by operation and result.");
        _poolDropped = _meter.CreateCounter<long>("vllmstack:kv_pool_dropped_puts", null, "Chunk puts dropped because Redis was unavailable.");
        _poolEvictions = _meter.CreateCounter<long>("vllmstack:kv_pool_evictions", null, "Chunks evicted to keep the pool within its byte budget.");
        _redisLatency = _meter.CreateHistogram<double>("vllmstack:redis_command_duration_seconds", "s", "Redis round-trip time per command or pipelined batch.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25] });
        _lookupLatency = _meter.CreateHistogram<double>("vllmstack:kv_lookup_duration_seconds", "s", "Time to answer a lookup, Redis included.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05] });
        _meter.CreateObservableGauge("vllmstack:kv_index_entries", () => (long)index.Entries, null, "(block, engine) entries in the index.");
        _meter.CreateObservableGauge("vllmstack:kv_index_engines", () => (long)index.Engines().Count, null, "Engines reporting to the index.");
    }

    public void Lookup(int queried, int localHit, int poolHit, double seconds)
    {
        _lookups.Add(1);
        _queriedTokens.Add(queried);
        _hitTokens.Add(localHit, new KeyValuePair<string, object?>("where", "local"));
        _hitTokens.Add(poolHit, new KeyValuePair<string, object?>("where", "pool"));
        _lookupLatency.Record(seconds);
    }

    public void Events(int stored, int evicted)
    {
        _events.Add(stored, new KeyValuePair<string, object?>("kind", "stored"));
        _events.Add(evicted, new KeyValuePair<string, object?>("kind", "evicted"));
    }

    public void PoolOperation(string operation, string result) =>
        _poolOperations.Add(1, new KeyValuePair<string, object?>("operation", operation), new KeyValuePair<string, object?>("result", result));

    public void PoolPutDropped(int chunks = 1) => _poolDropped.Add(chunks);

    public void PoolEvicted(long chunks) => _poolEvictions.Add(chunks);

    public void Redis(double seconds) => _redisLatency.Record(seconds);

    public void PoolUsage(long bytes, long chunks)
    {
        Interlocked.Exchange(ref _poolBytes, bytes);
        Interlocked.Exchange(ref _poolChunks, chunks);
    }

    public void Dispose() => _meter.Dispose();
}
