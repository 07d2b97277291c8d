using System.Diagnostics;
using StackExchange.Redis;
using VllmStack.CacheServer.Configuration;
using VllmStack.CacheServer.Stats;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.CacheServer.Pool;

/// <summary>What became of a put.</summary>
public enum PutResult
{
    Stored,
    AlreadyPresent,
    Dropped,
}

/// <summary>
/// KV chunks in Redis, keyed by (model, block hash): <c>kv:{model}:{hash}</c>. A sorted set orders chunks by last use and
/// a size table and a counter track their bytes, so the pool stays within its byte budget by evicting the least recently
/// used. A chunk and its bookkeeping are written and removed together by one Lua script (<see cref="PoolScripts"/>).
/// Every call is bounded; while Redis is down the pool answers at once ("unavailable", "nothing known") and drops puts.
/// </summary>
public sealed class KvChunkPool(IConnectionMultiplexer redis, CacheServerOptions options, RedisAvailability availability, CacheMetrics metrics, ILogger<KvChunkPool> logger)
{
    private static readonly RedisKey Lru = "kv:lru";
    private static readonly RedisKey Sizes = "kv:sizes";
    private static readonly RedisKey Bytes = "kv:bytes";
    private readonly SemaphoreSlim _evicting = new(1, 1);
    private readonly IDatabase _db = redis.GetDatabase();

    public bool Available => availability.IsAvailable;

    public static string Key(string model, ulong hash) => $"kv:{model}:{KvBlockHashes.Format(hash)}";

    public async Task<PutResult> PutAsync(string model, ulong hash, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken) =>
        (await PutManyAsync(model, [(hash, chunk)], cancellationToken).ConfigureAwait(false))[0];

    /// <summary>
    /// Stores the chunks that are not yet in the pool, each with its bookkeeping, in one script (one round trip, applied
    /// whole or not at all); evicts if the budget is exceeded. While Redis is down every chunk is dropped, counted.
    /// </summary>
    public async Task<PutResult[]> PutManyAsync(string model, IReadOnlyList<(ulong Hash, ReadOnlyMemory<byte> Chunk)> chunks, CancellationToken cancellationToken)
    {
        var results = new PutResult[chunks.Count];
        if (!availability.IsAvailable)
        {
            Array.Fill(results, PutResult.Dropped);
            metrics.PoolPutDropped(chunks.Count);
            return results;
        }
        var values = new RedisValue[chunks.Count + 1];
        values[0] = Now();
        for (var i = 0; i < chunks.Count; i++)
        {
            // No copy: the value wraps the request body's array.
            values[i + 1] = chunks[i].Chunk;
        }
        try
        {
            var started = Stopwatch.GetTimestamp();
            var reply = (RedisResult[])(await _db.ScriptEvaluateAsync(PoolScripts.Put, BookkeepingAnd(chunks.Select(c => Key(model, c.Hash))), values)
                .WaitAsync(cancellationToken).ConfigureAwait(false))!;
            metrics.Redis(Stopwatch.GetElapsedTime(started).TotalSeconds);
            for (var i = 0; i < chunks.Count; i++)
            {
                results[i] = (long)reply[i + 1] == 1 ? PutResult.Stored : PutResult.AlreadyPresent;
                metrics.PoolOperation("put", results[i] == PutResult.Stored ? "stored" : "present");
            }
            if ((long)reply[0] > options.PoolBudgetBytes)
            {
                await EvictAsync(cancellationToken).ConfigureAwait(false);
            }
            return results;
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e))
        {
            Unavailable(e);
            // Whether the script ran is unknown; if it did, chunk and bookkeeping are both there, and a retry finds it present.
            Array.Fill(results, PutResult.Dropped);
            metrics.PoolPutDropped(chunks.Count);
            return results;
        }
    }

    /// <summary>The chunk, null when the pool does not have it; throws <see cref="PoolUnavailableException"/> while Redis is down.</summary>
    public async Task<byte[]?> GetAsync(string model, ulong hash, CancellationToken cancellationToken)
    {
        EnsureAvailable();
        var key = Key(model, hash);
        try
        {
            var started = Stopwatch.GetTimestamp();
            // Pipelined with the read: XX touches the chunk's LRU entry only if it has one, so a miss leaves nothing behind.
            var value = _db.StringGetAsync(key);
            var touched = _db.SortedSetUpdateAsync(Lru, key, Now(), SortedSetWhen.Exists);
            await Task.WhenAll(value, touched).WaitAsync(cancellationToken).ConfigureAwait(false);
            metrics.Redis(Stopwatch.GetElapsedTime(started).TotalSeconds);
            var chunk = (byte[]?)await value.ConfigureAwait(false);
            metrics.PoolOperation("get", chunk is null ? "miss" : "hit");
            return chunk;
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e))
        {
            throw Unavailable(e);
        }
    }

    /// <summary>Many chunks in one round trip (MGET, and a ZADD XX that touches those present in the LRU); null entries are missing.</summary>
    public async Task<byte[]?[]> GetManyAsync(string model, IReadOnlyList<ulong> hashes, CancellationToken cancellationToken)
    {
        EnsureAvailable();
        var keys = hashes.Select(h => Key(model, h)).ToArray();
        try
        {
            var started = Stopwatch.GetTimestamp();
            var now = Now();
            var values = _db.StringGetAsync([.. keys.Select(k => (RedisKey)k)]);
            var touched = _db.SortedSetUpdateAsync(Lru, [.. keys.Select(k => new SortedSetEntry(k, now))], SortedSetWhen.Exists);
            await Task.WhenAll(values, touched).WaitAsync(cancellationToken).ConfigureAwait(false);
            metrics.Redis(Stopwatch.GetElapsedTime(started).TotalSeconds);
            metrics.PoolOperation("get_many", "ok");
            return [.. (await values.ConfigureAwait(false)).Select(v => (byte[]?)v)];
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e))
        {
            throw Unavailable(e);
        }
    }

    public async Task<bool[]> ExistsAsync(string model, IReadOnlyList<ulong> hashes, CancellationToken cancellationToken)
    {
        EnsureAvailable();
        try
        {
            var sizes = await SizesAsync([.. hashes.Select(h => Key(model, h))], null, cancellationToken).ConfigureAwait(false);
            metrics.PoolOperation("exists", "ok");
            return [.. sizes.Select(size => size is not null)];
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e))
        {
            throw Unavailable(e);
        }
    }

    public async Task<bool> DeleteAsync(string model, ulong hash, CancellationToken cancellationToken)
    {
        EnsureAvailable();
        try
        {
            var deleted = await RemoveAsync([Key(model, hash)], cancellationToken).ConfigureAwait(false);
            metrics.PoolOperation("delete", deleted > 0 ? "deleted" : "missing");
            return deleted > 0;
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e))
        {
            throw Unavailable(e);
        }
    }

    /// <summary>
    /// How many of the leading <paramref name="blocks"/> the pool holds, in one round trip with the short lookup
    /// timeout. Unavailable or slow Redis: zero, at once. A lookup over its bound is Redis busy (a burst of puts, a slow
    /// command), not Redis down: that lookup answers zero (counted, <c>leading</c>/<c>timeout</c>) and the breaker stays
    /// closed, so puts and other lookups go on; Redis's own timeouts and connection failures still open it.
    /// </summary>
    public async Task<int> LeadingChunksAsync(string model, IReadOnlyList<ulong> blocks, CancellationToken cancellationToken)
    {
        if (blocks.Count == 0 || !availability.IsAvailable)
        {
            return 0;
        }
        try
        {
            var started = Stopwatch.GetTimestamp();
            // One HMGET on the size table rather than an EXISTS per block: a single command is far cheaper for Redis.
            var sizes = await SizesAsync([.. blocks.Take(4096).Select(h => Key(model, h))], TimeSpan.FromMilliseconds(options.LookupTimeoutMs), cancellationToken).ConfigureAwait(false);
            metrics.Redis(Stopwatch.GetElapsedTime(started).TotalSeconds);
            var leading = 0;
            while (leading < sizes.Length && sizes[leading] is not null)
            {
                leading++;
            }
            metrics.PoolOperation("leading", "ok");
            return leading;
        }
        catch (TimeoutException e) when (e is not RedisTimeoutException)
        {
            metrics.PoolOperation("leading", "timeout");
            return 0;
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e))
        {
            Unavailable(e);
            return 0;
        }
    }

    public async Task<(long Bytes, long Chunks)> UsageAsync(CancellationToken cancellationToken)
    {
        EnsureAvailable();
        try
        {
            var bytes = _db.StringGetAsync(Bytes);
            var chunks = _db.SortedSetLengthAsync(Lru);
            await Task.WhenAll(bytes, chunks).WaitAsync(cancellationToken).ConfigureAwait(false);
            return ((long?)await bytes.ConfigureAwait(false) ?? 0, await chunks.ConfigureAwait(false));
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e))
        {
            throw Unavailable(e);
        }
    }

    /// <summary>Evicts the least recently used chunks, just enough of them to bring the pool back within budget.</summary>
    private async Task EvictAsync(CancellationToken cancellationToken)
    {
        if (!await _evicting.WaitAsync(0, cancellationToken).ConfigureAwait(false))
        {
            return;
        }
        try
        {
            while (true)
            {
                var total = (long?)await _db.StringGetAsync(Bytes).WaitAsync(cancellationToken).ConfigureAwait(false) ?? 0;
                var excess = total - options.PoolBudgetBytes;
                if (excess <= 0)
                {
                    return;
                }
                var oldest = (await _db.SortedSetRangeByRankAsync(Lru, 0, 63).WaitAsync(cancellationToken).ConfigureAwait(false))
                    .Select(member => member.ToString()).ToList();
                if (oldest.Count == 0)
                {
                    // The counter drifted (keys changed behind our back): reset it rather than loop.
                    await _db.StringSetAsync(Bytes, 0).WaitAsync(cancellationToken).ConfigureAwait(false);
                    return;
                }
                var sizes = await SizesAsync(oldest, null, cancellationToken).ConfigureAwait(false);
                var victims = new List<string>();
                long freed = 0;
                for (var i = 0; i < oldest.Count && freed < excess; i++)
                {
                    victims.Add(oldest[i]);
                    freed += sizes[i] ?? 0;
                }
                await RemoveAsync(victims, cancellationToken).ConfigureAwait(false);
                metrics.PoolEvicted(victims.Count);
            }
        }
        finally
        {
            _evicting.Release();
        }
    }

    /// <summary>
    /// The chunks' sizes from the size table (null: not in the pool). The table is written with each chunk and cleared
    /// with it, so it answers for presence too, in one command however many keys are asked.
    /// </summary>
    private async Task<long?[]> SizesAsync(IReadOnlyList<string> keys, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        if (keys.Count == 0)
        {
            return [];
        }
        var sizes = _db.HashGetAsync(Sizes, [.. keys.Select(k => (RedisValue)k)]);
        var values = timeout is { } bound
            ? await sizes.WaitAsync(bound, cancellationToken).ConfigureAwait(false)
            : await sizes.WaitAsync(cancellationToken).ConfigureAwait(false);
        return [.. values.Select(size => (long?)size)];
    }

    /// <summary>Deletes chunks with their bookkeeping, in one script; returns how many existed.</summary>
    private async Task<long> RemoveAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken) =>
        (long)(await _db.ScriptEvaluateAsync(PoolScripts.Remove, BookkeepingAnd(keys)).WaitAsync(cancellationToken).ConfigureAwait(false))!;

    /// <summary>KEYS of both scripts: the bookkeeping keys, then the chunk keys.</summary>
    private static RedisKey[] BookkeepingAnd(IEnumerable<string> chunkKeys) => [Lru, Sizes, Bytes, .. chunkKeys.Select(k => (RedisKey)k)];

    private void EnsureAvailable()
    {
        if (!availability.IsAvailable)
        {
            throw new PoolUnavailableException(availability.LastError, null);
        }
    }

    private PoolUnavailableException Unavailable(Exception e)
    {
        var wasAvailable = availability.IsAvailable;
        availability.Failed(e);
        if (wasAvailable)
        {
            logger.LogWarning("Redis unavailable ({Reason}): lookups answer without the pool and puts are dropped until it is back", e.Message);
        }
        return new PoolUnavailableException(e.Message, e);
    }

    private static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
}

/// <summary>Redis is down: the caller answers 503 (reads) or counts a drop (writes).</summary>
public sealed class PoolUnavailableException(string? reason, Exception? cause)
    : Exception($"The KV chunk pool is unavailable: {reason ?? "Redis cannot be reached."}", cause);
