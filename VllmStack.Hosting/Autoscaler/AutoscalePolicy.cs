namespace VllmStack.Hosting.Autoscaler;

/// <summary>
/// A scaled engine's policy as the AppHost declares it; null leaves the autoscaler's default (README, "Autoscaler").
/// Each set value reaches the autoscaler as <c>Autoscaler__Targets__N__Policy__Name</c>.
/// </summary>
public sealed class AutoscalePolicy
{
    public int? MinReplicas { get; set; }

    public int? MaxReplicas { get; set; }

    public double? TargetWaitingPerReplica { get; set; }

    public double? TargetKvUsage { get; set; }

    public double? TargetQpsPerReplica { get; set; }

    public double? StableWindowSeconds { get; set; }

    public double? PanicWindowSeconds { get; set; }

    public double? ScaleUpStabilizationSeconds { get; set; }

    public double? ScaleDownStabilizationSeconds { get; set; }

    public int? MaxScaleUpStep { get; set; }

    public int? MaxScaleDownStep { get; set; }

    public bool? ScaleToZero { get; set; }

    public double? ScaleToZeroAfterSeconds { get; set; }

    /// <summary>The values that are set, by property name, formatted for configuration.</summary>
    public IEnumerable<KeyValuePair<string, string>> Settings() =>
        typeof(AutoscalePolicy).GetProperties()
            .Select(p => (p.Name, Value: p.GetValue(this)))
            .Where(p => p.Value is not null)
            .Select(p => new KeyValuePair<string, string>(p.Name, p.Value switch
            {
                bool b => b ? "true" : "false",
                IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
                var other => other!.ToString()!,
            }));
}
