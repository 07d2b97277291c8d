namespace VllmStack.EngineSim.Configuration;

/// <summary>
/// The per-token latency model (DESIGN.md): TTFT = queue wait + prefill overhead + uncached prompt tokens ×
/// prefill time per token; each later token after the inter-token latency; compute times scaled up linearly
/// with the number of running sequences, reaching <see cref="TimeFactorUnderLoad"/> at max-num-seqs.
/// </summary>
public sealed record LatencyProfile(
    double PrefillOverheadMs,
    double PrefillTimePerTokenMs,
    double InterTokenLatencyMs,
    double TimeFactorUnderLoad,
    double Jitter)
{
    /// <summary>No delays at all: for measuring the overhead of everything around the engine.</summary>
    public static readonly LatencyProfile Instant = new(0, 0, 0, 1, 0);

    /// <summary>A few milliseconds per request: queues form under concurrency, tests stay quick.</summary>
    public static readonly LatencyProfile Fast = new(2, 0.01, 1, 2, 0);

    /// <summary>An 8B model (Llama-3-8B class) on one H100, from the ranges in DESIGN.md.</summary>
    public static readonly LatencyProfile H100Llama8B = new(30, 0.2, 12, 2.5, 0.1);

    public static IReadOnlyDictionary<string, LatencyProfile> Presets { get; } = new Dictionary<string, LatencyProfile>(StringComparer.OrdinalIgnoreCase)
    {
        ["instant"] = Instant,
        ["fast"] = Fast,
        ["h100-8b"] = H100Llama8B,
    };

    public bool IsInstant => PrefillOverheadMs <= 0 && PrefillTimePerTokenMs <= 0 && InterTokenLatencyMs <= 0;

    /// <summary>Multiplier for compute time with <paramref name="running"/> sequences in the batch.</summary>
    public double LoadFactor(int running, int maxNumSeqs) =>
        maxNumSeqs <= 1 || running <= 1 ? 1 : 1 + (TimeFactorUnderLoad - 1) * Math.Min(1, (running - 1) / (double)(maxNumSeqs - 1));

    public double PrefillMs(int uncachedTokens) => PrefillOverheadMs + Math.Max(0, uncachedTokens) * PrefillTimePerTokenMs;
}
