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
        if (MaxIndexEntries < 1 || PoolBudgetBytes < 1)
        {
            yield return "CacheServer:MaxIndexEntries and PoolBudgetBytes must be positive";
        }
    }
}
