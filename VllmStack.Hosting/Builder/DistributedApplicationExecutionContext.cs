using VllmStack.Hosting.Publishing;

namespace VllmStack.Hosting.Builder;

public enum DistributedApplicationOperation
{
    /// <summary>Start the resources on this machine.</summary>
    Run,

    /// <summary>Write deployment manifests for the same model (<c>publish --output-path DIR</c>).</summary>
    Publish,
}

/// <summary>
/// What the AppHost was asked to do, as Aspire's execution context: models that differ between the two
/// (a router's discovery, an autoscaler's actuator) ask <see cref="IsPublishMode"/> while they are declared.
/// </summary>
public sealed class DistributedApplicationExecutionContext
{
    private DistributedApplicationExecutionContext(DistributedApplicationOperation operation, KubernetesPublishOptions? publish)
    {
        Operation = operation;
        PublishOptions = publish;
    }

    public static DistributedApplicationExecutionContext RunMode { get; } = new(DistributedApplicationOperation.Run, null);

    public static DistributedApplicationExecutionContext ForPublish(KubernetesPublishOptions options) => new(DistributedApplicationOperation.Publish, options);

    public DistributedApplicationOperation Operation { get; }

    public bool IsRunMode => Operation == DistributedApplicationOperation.Run;

    public bool IsPublishMode => Operation == DistributedApplicationOperation.Publish;

    /// <summary>The publisher's settings in publish mode; null when running.</summary>
    public KubernetesPublishOptions? PublishOptions { get; }

    /// <summary>
    /// <c>publish [options] [configuration…]</c> selects publish mode; the publisher's own options are taken out and the
    /// rest (<c>--Parameters:model=…</c>) is left for configuration. Anything else is run mode with every argument as configuration.
    /// </summary>
    public static (DistributedApplicationExecutionContext Context, string[] ConfigurationArgs) FromArgs(string[] args)
    {
        if (args.Length == 0 || args[0] != "publish")
        {
            return (RunMode, args);
        }
        var (options, rest) = KubernetesPublishOptions.Parse(args[1..]);
        return (ForPublish(options), rest);
    }
}
