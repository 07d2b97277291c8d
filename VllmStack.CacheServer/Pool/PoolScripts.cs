namespace VllmStack.CacheServer.Pool;

/// <summary>
/// The pool's writes as Lua scripts, so that a chunk and its bookkeeping (the LRU sorted set, the size table, the byte
/// counter) change together or not at all: Redis runs a script atomically, and a server that dies mid-way has applied
/// none of it. StackExchange.Redis sends them as EVALSHA after one SCRIPT LOAD per connection and reloads them after
/// NOSCRIPT (a restarted server). Both take <c>KEYS = lru, sizes, bytes, chunk keys…</c>.
/// </summary>
internal static class PoolScripts
{
    /// <summary>The first chunk key's index in KEYS, 1-based as Lua counts.</summary>
    public const int FirstChunkKey = 4;

    /// <summary>
    /// Stores each chunk that is not there yet (SET NX) with its size, touches every one in the LRU, adds the new bytes
    /// to the counter. <c>ARGV = now, chunk bodies…</c> in the order of the chunk keys. Returns
    /// <c>{total bytes, 1 (stored) or 0 (present) per chunk…}</c>.
    /// </summary>
    public const string Put = """
        local results = { 0 }
        local added = 0
        for i = 4, #KEYS do
          local body = ARGV[i - 2]
          if redis.call('SET', KEYS[i], body, 'NX') then
            redis.call('HSET', KEYS[2], KEYS[i], #body)
            added = added + #body
            results[#results + 1] = 1
          else
            results[#results + 1] = 0
          end
          redis.call('ZADD', KEYS[1], ARGV[1], KEYS[i])
        end
        results[1] = redis.call('INCRBY', KEYS[3], added)
        return results
        """;

    /// <summary>Deletes chunks with their size entries and LRU entries and takes their bytes off the counter; returns how many existed.</summary>
    public const string Remove = """
        local deleted = 0
        local freed = 0
        for i = 4, #KEYS do
          local size = redis.call('HGET', KEYS[2], KEYS[i])
          if size then
            freed = freed + tonumber(size)
          end
          deleted = deleted + redis.call('DEL', KEYS[i])
          redis.call('HDEL', KEYS[2], KEYS[i])
          redis.call('ZREM', KEYS[1], KEYS[i])
        end
        if freed > 0 then
          redis.call('DECRBY', KEYS[3], freed)
        end
        return deleted
        """;
}
