using System.Text.RegularExpressions;
using Microsoft.Extensions.Configuration;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// What the published manifests point at. Set in code with <c>WithProperties</c>; configuration overrides it, from the
/// <c>Kubernetes</c> section — on the command line <c>--Kubernetes:Namespace=llm --Kubernetes:Registry=ghcr.io/acme
/// --Kubernetes:ImageTag=1.2.3 --Kubernetes:ServiceMonitors=true</c>. Where the files go is Aspire's own
/// <c>--output-path</c>.
/// </summary>
public sealed partial class KubernetesPublishOptions
{
    /// <summary>The configuration section the options are read from.</summary>
    public const string Section = "Kubernetes";

    /// <summary>Namespace of every object: a DNS label (lower-case letters, digits, '-'; at most 63).</summary>
    public string Namespace { get; set; } = "vllmstack";

    /// <summary>
    /// Registry (and path) of our service images, e.g. <c>ghcr.io/acme</c>: images are <c>REGISTRY/vllmstack-router:TAG</c>.
    /// None: bare image names, as the SDK loads them into a local daemon (kind, minikube).
    /// </summary>
    public string? Registry { get; set; }

    /// <summary>Tag of our service images (the SDK's <c>ContainerImageTag</c>).</summary>
    public string ImageTag { get; set; } = "latest";

    /// <summary>Also write Prometheus Operator ServiceMonitors for the engines and our services.</summary>
    public bool ServiceMonitors { get; set; }

    /// <summary>Storage class of the engines' shared model cache (ReadWriteMany); none: the cluster's default.</summary>
    public string? StorageClass { get; set; }

    /// <summary>An OTLP/HTTP collector our services send traces, metrics and logs to (absolute http or https URL); none: no export.</summary>
    public Uri? OtlpEndpoint { get; set; }

    /// <summary>
    /// Applies the <see cref="Section"/> section of <paramref name="configuration"/> over the values set in code, then
    /// checks them.
    /// </summary>
    /// <exception cref="KubernetesPublishException">A setting is unknown, cannot be read as its type, or is not valid.</exception>
    public void Apply(IConfiguration configuration)
    {
        var section = configuration.GetSection(Section);
        var known = typeof(KubernetesPublishOptions).GetProperties().Select(p => p.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var setting in section.GetChildren())
        {
            if (!known.Contains(setting.Key))
            {
                throw new KubernetesPublishException(
                    $"Unknown setting {Section}:{setting.Key} (known: {string.Join(", ", known.Order(StringComparer.Ordinal))}).");
            }
        }
        try
        {
            section.Bind(this);
        }
        catch (InvalidOperationException e)
        {
            // The binder's message names the key and the type, e.g. "Failed to convert configuration value at
            // 'Kubernetes:ServiceMonitors' to type 'System.Boolean'."
            throw new KubernetesPublishException(e.Message);
        }
        Validate();
    }

    /// <summary>Checks every value against what Kubernetes and image references allow.</summary>
    /// <exception cref="KubernetesPublishException">The first value that is not valid, with the rule it breaks.</exception>
    public void Validate()
    {
        if (!KubernetesLabels.IsObjectName(Namespace))
        {
            throw Invalid(nameof(Namespace), Namespace, "must be a DNS label (lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit)");
        }
        if (Registry is { } registry && !RegistryPattern().IsMatch(registry.TrimEnd('/')))
        {
            throw Invalid(nameof(Registry), registry, "must be a registry host with an optional port and path, e.g. ghcr.io/acme or localhost:5000");
        }
        if (!ImageTagPattern().IsMatch(ImageTag))
        {
            throw Invalid(nameof(ImageTag), ImageTag, "is not a valid image tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')");
        }
        if (StorageClass is { } storageClass && !DnsSubdomain().IsMatch(storageClass))
        {
            throw Invalid(nameof(StorageClass), storageClass, "must be a DNS subdomain (lower-case letters, digits, '-' and '.')");
        }
        if (OtlpEndpoint is { } otlp && !(otlp.IsAbsoluteUri && otlp.Scheme is "http" or "https"))
        {
            throw Invalid(nameof(OtlpEndpoint), otlp.OriginalString, "must be an absolute http or https URL");
        }
    }

    /// <summary>The registry without a trailing '/', or null.</summary>
    internal string? RegistryPrefix => Registry is { Length: > 0 } registry ? registry.TrimEnd('/') : null;

    private static KubernetesPublishException Invalid(string setting, string value, string rule) =>
        new($"{Section}:{setting} '{value}' {rule}.");

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\z")]
    private static partial Regex DnsSubdomain();

    [GeneratedRegex(@"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\z")]
    private static partial Regex ImageTagPattern();

    [GeneratedRegex(@"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-]+[a-z0-9]+)*)*\z")]
    private static partial Regex RegistryPattern();
}
