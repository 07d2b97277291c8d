namespace VllmStack.CacheServer.Configuration;

/// <summary>Section <c>CacheServer</c> of configuration; the Redis address comes from <c>ConnectionStrings__cache</c>.</summary>
public sealed class CacheServerOptions
{
    public const string Section = "CacheServer";

    /// <summary>Name of the connection string (Aspire's <c>ConnectionStrings__{name}</c>).</summary>
    public string ConnectionName { get; set; } = "cache";

    /// <summary>Tokens per KV block; must match the engines' <c>--block-size</c>.</summary>
    public int BlockSize { get; set; } = 16;

    /// <summary>An engine that has reported nothing (events or heartbeat) for this long is dropped from the index.</summary>
    public double EngineTtlSeconds { get; set; } = 30;

    /// <summary>Upper bound of (block, engine) entries in the index, whatever engines report.</summary>
    public int MaxIndexEntries { get; set; } = 4_000_000;

    /// <summary>Bytes the KV chunk pool may hold in Redis before the least recently used chunks are evicted.</summary>
    public long PoolBudgetBytes { get; set; } = 1L << 30;

    /// <summary>Timeout of a Redis command on the lookup path (kept short: a slow Redis must not slow routing).</summary>
    public double LookupTimeoutMs { get; set; } = 50;

    /// <summary>Bound of one connect attempt to Redis (StackExchange.Redis <c>connectTimeout</c>); the connection string's own wins.</summary>
    public int RedisConnectTimeoutMs { get; set; } = 2000;

    /// <summary>Bound of every other Redis command (<c>syncTimeout</c> and <c>asyncTimeout</c>); the connection string's own win.</summary>
    public int RedisCommandTimeoutMs { get; set; } = 5000;

    public IEnumerable<string> Validate()
    {
        if (BlockSize is < 1 or > 1024)
        {
            yield return "CacheServer:BlockSize must be between 1 and 1024";
        }
        if (EngineTtlSeconds <= 0 || LookupTimeoutMs <= 0)
        {
            yield return "CacheServer:EngineTtlSeconds and LookupTimeoutMs must be positive";
        }
        if (RedisConnectTimeoutMs is < 1 or > 60_000 || RedisCommandTimeoutMs is < 1 or > 60_000)
        {
            yield return "CacheServer:RedisConnectTimeoutMs and RedisCommandTimeoutMs must be between 1 and 60000";
        }
        if (MaxIndexEntries < 1 || PoolBudgetBytes < 1)
        {
            yield return "CacheServer:MaxIndexEntries and PoolBudgetBytes must be positive";
        }
    }
}
