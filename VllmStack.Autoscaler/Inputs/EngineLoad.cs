namespace VllmStack.Autoscaler.Inputs;

/// <summary>One engine as the router's <c>/engines</c> reports it: what it serves and its last scraped load.</summary>
public sealed record EngineLoad(string Url, IReadOnlyList<string> Models, bool Routable, double Waiting, double Running, double KvUsage,
    double Qps, DateTimeOffset? ScrapedAt);

/// <summary>
/// The router's view at one moment: its engines, the requests it turned away per model for want of an engine, and the
/// requests waiting in its admission queue per model (empty when admission control is off or the router predates it).
/// </summary>
public sealed record RouterView(DateTimeOffset At, IReadOnlyList<EngineLoad> Engines, IReadOnlyDictionary<string, long> Unserved,
    IReadOnlyDictionary<string, int>? Queued = null);
