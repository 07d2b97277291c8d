namespace VllmStack.Router.Health;

/// <summary>
/// Passive health, after Envoy's outlier detection: section <c>Router:OutlierDetection</c>. Only engine-side failures
/// count (see <see cref="EngineFailureKind"/>); a request's own problems never do.
/// </summary>
public sealed class OutlierDetectionOptions
{
    /// <summary>
    /// Consecutive gateway failures (connect failure, reset or timeout before response headers, 502/503/504, a
    /// response cut off by the engine) that eject an engine. 1: the first, since each of these means the engine did
    /// not serve a request it was able to receive.
    /// </summary>
    public int ConsecutiveGatewayFailures { get; set; } = 1;

    /// <summary>
    /// Consecutive 5xx answers of any kind, with no other answer in between, that eject an engine (Envoy's
    /// <c>consecutive_5xx</c>). A single 500 is relayed as the engine wrote it and may be the request's fault; an
    /// engine that answers nothing else is broken.
    /// </summary>
    public int Consecutive5xx { get; set; } = 5;

    /// <summary>Seconds of the first ejection; each further ejection without a success in between doubles it, up to <see cref="MaxEjectionSeconds"/>.</summary>
    public double BaseEjectionSeconds { get; set; } = 1;

    public double MaxEjectionSeconds { get; set; } = 30;

    /// <summary>
    /// Largest share of a model's engines that may be ejected at once, in percent; at least one engine of a model always
    /// stays in. An ejection past the ceiling is skipped (logged and counted).
    /// </summary>
    public double MaxEjectionPercent { get; set; } = 50;

    /// <summary>
    /// When fewer than this share (percent) of a model's engines that pass their <c>/health</c> probes are left after
    /// ejections, ejections are ignored and requests spread over all of them (Envoy's panic threshold): active probes
    /// decide. 0 turns panic routing off.
    /// </summary>
    public double PanicThresholdPercent { get; set; } = 50;

    public IEnumerable<string> Validate()
    {
        if (ConsecutiveGatewayFailures < 1 || Consecutive5xx < 1)
        {
            yield return "OutlierDetection:ConsecutiveGatewayFailures and Consecutive5xx must be at least 1";
        }
        if (BaseEjectionSeconds <= 0 || MaxEjectionSeconds < BaseEjectionSeconds)
        {
            yield return "OutlierDetection:BaseEjectionSeconds must be positive and not above MaxEjectionSeconds";
        }
        if (MaxEjectionPercent is < 0 or > 100 || PanicThresholdPercent is < 0 or > 100)
        {
            yield return "OutlierDetection:MaxEjectionPercent and PanicThresholdPercent are percentages (0 to 100)";
        }
    }
}
