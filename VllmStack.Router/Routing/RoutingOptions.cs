namespace VllmStack.Router.Routing;

/// <summary>Settings of the <c>session</c> policy.</summary>
public sealed class SessionRoutingOptions
{
    /// <summary>
    /// Points each engine gets on the consistent-hash ring. More points spread sessions more evenly
    /// (the Production Stack uses 160) at the cost of a larger ring to build and search.
    /// </summary>
    public int VirtualNodes { get; set; } = 160;
}

/// <summary>Settings of the <c>prefixaware</c> policy.</summary>
public sealed class PrefixRoutingOptions
{
    /// <summary>
    /// Characters per prompt chunk; the index works at this granularity. Only whole chunks are indexed, so
    /// prompts shorter than this always go to the least-loaded engine. 128 matches the Production Stack.
    /// </summary>
    public int ChunkSize { get; set; } = 128;

    /// <summary>
    /// Hard cap on chunk entries in the prefix index; the least recently used entries are evicted beyond it.
    /// Memory is preallocated for this many entries (roughly 60 bytes each) and never grows with traffic.
    /// </summary>
    public int MaxIndexEntries { get; set; } = 262_144;

    /// <summary>
    /// The load guard fires only when the prefix holder's <c>LoadScore</c> exceeds the least-loaded
    /// candidate's by more than this many requests... Small on purpose: a prompt that shares only a hot system
    /// prompt would otherwise pile every new conversation onto its first holder (measured: 2 → TTFT 186 ms mean,
    /// 8 → 635 ms, in the policies benchmark), while a busy holder is still protected by the ratio below.
    /// </summary>
    public int ImbalanceAbsolute { get; set; } = 2;

    /// <summary>
    /// ...and is more than this multiple of (least-loaded score + 1). Both must hold, so small absolute gaps
    /// on idle engines and small relative gaps on busy engines keep their cache affinity.
    /// </summary>
    public double ImbalanceRatio { get; set; } = 1.5;
}

/// <summary>Settings of the <c>kvaware</c> policy (llm-d's weighted scorers, with the cache server as the prefix scorer).</summary>
public sealed class KvAwareRoutingOptions
{
    /// <summary>The cache server's URL; else the Aspire service <see cref="CacheServerService"/>.</summary>
    public string? CacheServer { get; set; }

    public string CacheServerService { get; set; } = "cacheserver";

    /// <summary>Budget for tokenizing and looking up one prompt; past it the request goes to the least-loaded engine.</summary>
    public double LookupTimeoutMs { get; set; } = 100;

    /// <summary>Weight of the share of the prompt the engine already holds (llm-d: 3).</summary>
    public double PrefixWeight { get; set; } = 3;

    /// <summary>Weight of the engine's spare queue capacity relative to the busiest candidate (llm-d: 2).</summary>
    public double QueueWeight { get; set; } = 2;

    /// <summary>Weight of the engine's free KV cache (llm-d: 2).</summary>
    public double KvWeight { get; set; } = 2;

    /// <summary>As for prefixaware: the best-scoring engine is passed over when this far above the least loaded…</summary>
    public int ImbalanceAbsolute { get; set; } = 2;

    /// <summary>…and more than this multiple of (least-loaded + 1).</summary>
    public double ImbalanceRatio { get; set; } = 1.5;
}

/// <summary>The policy names accepted by configuration (<c>--routing-logic</c>).</summary>
public static class RoutingPolicyNames
{
    public const string RoundRobin = "roundrobin";
    public const string Session = "session";
    public const string LeastLoad = "leastload";
    public const string PrefixAware = "prefixaware";
    public const string KvAware = "kvaware";

    public static IReadOnlyList<string> All { get; } = [RoundRobin, Session, LeastLoad, PrefixAware, KvAware];
}
