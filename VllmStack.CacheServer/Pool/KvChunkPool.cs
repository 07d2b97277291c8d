using System.Diagnostics;
using System.Globalization;
using VllmStack.CacheServer.Configuration;
using VllmStack.CacheServer.Stats;
using VllmStack.Redis;
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
/// a counter tracks their bytes, so the pool stays within its byte budget by evicting the least recently used.
/// Every call is bounded; while Redis is down the pool answers at once ("unavailable", "nothing known") and drops puts.
/// </summary>
public sealed class KvChunkPool(RedisClient redis, CacheServerOptions options, RedisAvailability availability, CacheMetrics metrics, ILogger<KvChunkPool> logger)
{
    private const string Lru = "kv:lru";
    private const string Sizes = "kv:sizes";
    private const string Bytes = "kv:bytes";
    private readonly SemaphoreSlim _evicting = new(1, 1);

    public bool Available => availability.IsAvailable;

    public static string Key(string model, ulong hash) => $"kv:{model}:{KvBlockHashes.Format(hash)}";

    public async Task<PutResult> PutAsync(string model, ulong hash, ReadOnlyMemory<byte> chunk, CancellationToken cancellationToken) =>
        (await PutManyAsync(model, [(hash, chunk)], cancellationToken).ConfigureAwait(false))[0];

    /// <summary>
    /// Stores chunks that are not yet in the pool (SET NX, all in one round trip), then their bookkeeping in a second;
    /// evicts if the budget is exceeded. While Redis is down every chunk is dropped, counted.
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
        var keys = chunks.Select(c => Key(model, c.Hash)).ToArray();
        try
        {
            var started = Stopwatch.GetTimestamp();
            var writes = redis.CreateBatch();
            var stored = chunks.Select((c, i) => writes.SetAsync(keys[i], c.Chunk, onlyIfNotExists: true)).ToArray();
            await writes.ExecuteAsync(cancellationToken).ConfigureAwait(false);
            var bookkeeping = redis.CreateBatch();
            var now = Now();
            long added = 0;
            for (var i = 0; i < chunks.Count; i++)
            {
                _ = bookkeeping.SortedSetAddAsync(Lru, keys[i], now);
                if (await stored[i].ConfigureAwait(false))
                {
                    _ = bookkeeping.HashSetAsync(Sizes, keys[i], System.Text.Encoding.ASCII.GetBytes(chunks[i].Chunk.Length.ToString(CultureInfo.InvariantCulture)));
                    added += chunks[i].Chunk.Length;
                    results[i] = PutResult.Stored;
                }
                else
                {
                    results[i] = PutResult.AlreadyPresent;
                }
                metrics.PoolOperation("put", results[i] == PutResult.Stored ? "stored" : "present");
            }
            var total = added > 0 ? bookkeeping.IncrementByAsync(Bytes, added) : null;
            await bookkeeping.ExecuteAsync(cancellationToken).ConfigureAwait(false);
            metrics.Redis(Stopwatch.GetElapsedTime(started).TotalSeconds);
            if (total is not null && await total.ConfigureAwait(false) > options.PoolBudgetBytes)
            {
                await EvictAsync(cancellationToken).ConfigureAwait(false);
            }
            return results;
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e))
        {
            Unavailable(e);
            // Whatever the first round trip may have written is not in the bookkeeping, so it does not count as stored.
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
            var batch = redis.CreateBatch();
            var value = batch.GetAsync(key);
            // Touch in the same round trip; adding an absent key to the LRU is undone right after.
            var touched = batch.SortedSetAddAsync(Lru, key, Now());
            await batch.ExecuteAsync(cancellationToken).ConfigureAwait(false);
            metrics.Redis(Stopwatch.GetElapsedTime(started).TotalSeconds);
            var chunk = await value.ConfigureAwait(false);
            if (chunk is null && await touched.ConfigureAwait(false))
            {
                await redis.SortedSetRemoveAsync(Lru, [key], cancellationToken).ConfigureAwait(false);
            }
            metrics.PoolOperation("get", chunk is null ? "miss" : "hit");
            return chunk;
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e))
        {
            Unavailable(e);
            throw new PoolUnavailableException(e);
        }
    }

    /// <summary>Many chunks in one round trip (MGET), touched in the LRU; null entries are missing.</summary>
    public async Task<byte[]?[]> GetManyAsync(string model, IReadOnlyList<ulong> hashes, CancellationToken cancellationToken)
    {
        EnsureAvailable();
        var keys = hashes.Select(h => Key(model, h)).ToList();
        try
        {
            var started = Stopwatch.GetTimestamp();
            var values = await redis.MultiGetAsync([.. keys.Select(k => (RedisKey)k)], cancellationToken).ConfigureAwait(false);
            var touch = redis.CreateBatch();
            var now = Now();
            for (var i = 0; i < keys.Count; i++)
            {
                if (values[i] is not null)
                {
                    _ = touch.SortedSetAddAsync(Lru, keys[i], now);
                }
            }
            if (touch.Count > 0)
            {
                await touch.ExecuteAsync(cancellationToken).ConfigureAwait(false);
            }
            metrics.Redis(Stopwatch.GetElapsedTime(started).TotalSeconds);
            metrics.PoolOperation("get_many", "ok");
            return values;
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e))
        {
            Unavailable(e);
            throw new PoolUnavailableException(e);
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
            Unavailable(e);
            throw new PoolUnavailableException(e);
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
            Unavailable(e);
            throw new PoolUnavailableException(e);
        }
    }

    /// <summary>
    /// How many of the leading <paramref name="blocks"/> the pool holds, in one pipelined round trip with the short lookup
    /// timeout. Unavailable or slow Redis: zero, at once.
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
            return leading;
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
            var batch = redis.CreateBatch();
            var bytes = batch.CommandAsync("GET", Bytes);
            var chunks = batch.CommandAsync("ZCARD", Lru);
            await batch.ExecuteAsync(cancellationToken).ConfigureAwait(false);
            var bytesReply = await bytes.ConfigureAwait(false);
            return (bytesReply.IsNull ? 0 : bytesReply.AsInt64(), (await chunks.ConfigureAwait(false)).AsInt64());
        }
        catch (Exception e) when (RedisAvailability.IsRedisFailure(e))
        {
            Unavailable(e);
            throw new PoolUnavailableException(e);
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
                var total = (await redis.ExecuteAsync("GET", [Bytes], cancellationToken: cancellationToken).ConfigureAwait(false)).AsInt64();
                var excess = total - options.PoolBudgetBytes;
                if (excess <= 0)
                {
                    return;
                }
                var oldest = (await redis.ExecuteAsync("ZRANGE", [Lru, 0, 63], cancellationToken: cancellationToken).ConfigureAwait(false))
                    .Elements!.Select(e => e.AsString()!).ToList();
                if (oldest.Count == 0)
                {
                    // The counter drifted (chunks deleted behind our back): reset it rather than loop.
                    await redis.ExecuteAsync("SET", [Bytes, 0], cancellationToken: cancellationToken).ConfigureAwait(false);
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
        var batch = redis.CreateBatch();
        var sizes = batch.HashGetManyAsync(Sizes, keys);
        await batch.ExecuteAsync(timeout, cancellationToken).ConfigureAwait(false);
        return [.. (await sizes.ConfigureAwait(false)).Select(bytes => bytes is null ? (long?)null : long.Parse(System.Text.Encoding.ASCII.GetString(bytes), CultureInfo.InvariantCulture))];
    }

    /// <summary>Deletes chunks with their bookkeeping; returns how many existed.</summary>
    private async Task<long> RemoveAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        var freed = (await SizesAsync(keys, null, cancellationToken).ConfigureAwait(false)).Sum(size => size ?? 0);
        var batch = redis.CreateBatch();
        var deleted = batch.DeleteAsync([.. keys.Select(k => (RedisKey)k)]);
        _ = batch.CommandAsync("HDEL", [Sizes, .. keys]);
        _ = batch.CommandAsync("ZREM", [Lru, .. keys]);
        _ = batch.IncrementByAsync(Bytes, -freed);
        await batch.ExecuteAsync(cancellationToken).ConfigureAwait(false);
        return await deleted.ConfigureAwait(false);
    }

    private void EnsureAvailable()
    {
        if (!availability.IsAvailable)
        {
            throw new PoolUnavailableException(null);
        }
    }

    private void Unavailable(Exception e)
    {
        var wasAvailable = availability.IsAvailable;
        availability.Failed(e);
        if (wasAvailable)
        {
            logger.LogWarning("Redis unavailable ({Reason}): lookups answer without the pool and puts are dropped until it is back", e.Message);
        }
    }

    private static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
}

/// <summary>Redis is down: the caller answers 503 (reads) or counts a drop (writes).</summary>
public sealed class PoolUnavailableException(Exception? cause) : Exception("The KV chunk pool is unavailable: Redis cannot be reached.", cause);
