using System.Diagnostics;
using System.Runtime.CompilerServices;
using VllmStack.Redis.Protocol;

namespace VllmStack.Redis;

/// <summary>Typed helpers for the commands the KV-cache server uses; anything else goes through <see cref="ExecuteAsync(string, object[])"/>.</summary>
public sealed partial class RedisClient
{
    /// <summary>PING; returns the round-trip time.</summary>
    public async Task<TimeSpan> PingAsync(CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        await RunAsync(Commands.Ping(), Replies.Text, null, cancellationToken).ConfigureAwait(false);
        return clock.Elapsed;
    }

    /// <summary>GET; null when the key does not exist.</summary>
    public Task<byte[]?> GetAsync(RedisKey key, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.Get(key), Replies.Bytes, null, cancellationToken);

    /// <summary>SET with an optional expiry (PX) and NX; false when NX kept an existing key.</summary>
    public Task<bool> SetAsync(RedisKey key, ReadOnlyMemory<byte> value, TimeSpan? expiry = null, bool onlyIfNotExists = false,
        CancellationToken cancellationToken = default) =>
        RunAsync(Commands.Set(key, value, expiry, onlyIfNotExists), Replies.SetResult, null, cancellationToken);

    /// <summary>DEL; the number of keys that existed.</summary>
    public Task<long> DeleteAsync(params RedisKey[] keys) => DeleteAsync(keys, CancellationToken.None);

    public Task<long> DeleteAsync(IEnumerable<RedisKey> keys, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.Delete(keys), Replies.Integer, null, cancellationToken);

    /// <summary>EXISTS; how many of the keys exist (a key named twice counts twice).</summary>
    public Task<long> ExistsAsync(params RedisKey[] keys) => ExistsAsync(keys, CancellationToken.None);

    public Task<long> ExistsAsync(IEnumerable<RedisKey> keys, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.Exists(keys), Replies.Integer, null, cancellationToken);

    /// <summary>PEXPIRE; false when the key does not exist.</summary>
    public Task<bool> ExpireAsync(RedisKey key, TimeSpan expiry, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.Expire(key, expiry), Replies.IntegerIsPositive, null, cancellationToken);

    /// <summary>PTTL; null when the key has no expiry or does not exist.</summary>
    public Task<TimeSpan?> TimeToLiveAsync(RedisKey key, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.TimeToLive(key), Replies.TimeToLive, null, cancellationToken);

    /// <summary>INCRBY; the new value (a missing key counts as 0).</summary>
    public Task<long> IncrementByAsync(RedisKey key, long increment, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.IncrementBy(key, increment), Replies.Integer, null, cancellationToken);

    /// <summary>HSET of one field; true when the field is new, false when it was overwritten.</summary>
    public Task<bool> HashSetAsync(RedisKey key, string field, ReadOnlyMemory<byte> value, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.HashSet(key, field, value), Replies.IntegerIsPositive, null, cancellationToken);

    /// <summary>HGET; null when the key or the field does not exist.</summary>
    public Task<byte[]?> HashGetAsync(RedisKey key, string field, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.HashGet(key, field), Replies.Bytes, null, cancellationToken);

    /// <summary>HMGET: the fields' values in the order asked, null where a field (or the whole hash) is missing.</summary>
    public Task<byte[]?[]> HashGetManyAsync(RedisKey key, IEnumerable<string> fields, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.HashGetMany(key, fields), Replies.BytesArray, null, cancellationToken);

    /// <summary>HDEL; the number of fields removed.</summary>
    public Task<long> HashDeleteAsync(RedisKey key, params string[] fields) => HashDeleteAsync(key, fields, CancellationToken.None);

    public Task<long> HashDeleteAsync(RedisKey key, IEnumerable<string> fields, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.HashDelete(key, fields), Replies.Integer, null, cancellationToken);

    /// <summary>HGETALL; empty when the key does not exist.</summary>
    public Task<Dictionary<string, byte[]>> HashGetAllAsync(RedisKey key, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.HashGetAll(key), Replies.Hash, null, cancellationToken);

    /// <summary>SADD; the number of members that were not in the set yet.</summary>
    public Task<long> SetAddAsync(RedisKey key, params string[] members) => SetAddAsync(key, members, CancellationToken.None);

    public Task<long> SetAddAsync(RedisKey key, IEnumerable<string> members, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.SetAdd(key, members), Replies.Integer, null, cancellationToken);

    /// <summary>SREM; the number of members removed.</summary>
    public Task<long> SetRemoveAsync(RedisKey key, params string[] members) => SetRemoveAsync(key, members, CancellationToken.None);

    public Task<long> SetRemoveAsync(RedisKey key, IEnumerable<string> members, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.SetRemove(key, members), Replies.Integer, null, cancellationToken);

    /// <summary>SMEMBERS, in the server's (unspecified) order.</summary>
    public Task<string[]> SetMembersAsync(RedisKey key, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.SetMembers(key), Replies.Strings, null, cancellationToken);

    /// <summary>ZADD of one member; true when it is new, false when only its score changed.</summary>
    public Task<bool> SortedSetAddAsync(RedisKey key, string member, double score, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.SortedSetAdd(key, member, score), Replies.IntegerIsPositive, null, cancellationToken);

    /// <summary>ZRANGEBYSCORE, lowest score first, bounds inclusive; <paramref name="count"/> &lt; 0 means no limit.</summary>
    public Task<string[]> SortedSetRangeByScoreAsync(RedisKey key, double min = double.NegativeInfinity, double max = double.PositiveInfinity,
        long offset = 0, long count = -1, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.SortedSetRangeByScore(key, min, max, offset, count), Replies.Strings, null, cancellationToken);

    /// <summary>ZREM; the number of members removed.</summary>
    public Task<long> SortedSetRemoveAsync(RedisKey key, params string[] members) => SortedSetRemoveAsync(key, members, CancellationToken.None);

    public Task<long> SortedSetRemoveAsync(RedisKey key, IEnumerable<string> members, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.SortedSetRemove(key, members), Replies.Integer, null, cancellationToken);

    /// <summary>MGET; one entry per key, in order, null where the key does not exist.</summary>
    public Task<byte[]?[]> MultiGetAsync(params RedisKey[] keys) => MultiGetAsync(keys, CancellationToken.None);

    public Task<byte[]?[]> MultiGetAsync(IEnumerable<RedisKey> keys, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.MultiGet(keys), Replies.BytesArray, null, cancellationToken);

    /// <summary>
    /// The keys matching a glob pattern, one SCAN page at a time (each page its own command and timeout). As with
    /// SCAN itself, a key may be returned more than once, and keys changed during the scan may be missed.
    /// </summary>
    public async IAsyncEnumerable<string> ScanAsync(string pattern = "*", int pageSize = 250,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        var cursor = "0";
        do
        {
            var (next, keys) = await RunAsync(Commands.Scan(cursor, pattern, pageSize), Replies.ScanPage, null, cancellationToken).ConfigureAwait(false);
            foreach (var key in keys)
            {
                yield return key;
            }
            cursor = next;
        }
        while (cursor != "0");
    }

    /// <summary>INFO, or INFO of one section (<c>server</c>, <c>memory</c>, <c>keyspace</c>…), as the server's text.</summary>
    public Task<string> InfoAsync(string? section = null, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.Info(section), Replies.Text, null, cancellationToken);
}
