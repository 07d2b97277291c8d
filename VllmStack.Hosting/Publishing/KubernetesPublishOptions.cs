using System.Text.RegularExpressions;

namespace VllmStack.Hosting.Publishing;

/// <summary>
/// <c>publish --output-path DIR [--namespace NS] [--registry R] [--image-tag T] [--service-monitors] [--storage-class C]
/// [--otlp-endpoint URL]</c>: where the manifests go and what they point at.
/// </summary>
public sealed partial class KubernetesPublishOptions
{
    public const string Usage = """
        usage: VllmStack.AppHost publish --output-path DIR [options] [--Parameters:NAME=VALUE …]
          -o, --output-path DIR     folder for the manifests and kustomization.yaml (created; secrets.env values kept)
          --namespace NS            namespace of every object (default vllmstack)
          --registry REGISTRY       registry of our service images, e.g. ghcr.io/acme (default: none, local image names)
          --image-tag TAG           tag of our service images (default latest)
          --service-monitors        also write Prometheus Operator ServiceMonitors for the router, engines and services
          --storage-class CLASS     storage class of the engines' Hugging Face cache volumes (default: the cluster's)
          --otlp-endpoint URL       OTLP/HTTP collector our services send traces and metrics to (default: none)
        """;

    public required string OutputPath { get; init; }

    public string Namespace { get; init; } = "vllmstack";

    public string? Registry { get; init; }

    public string ImageTag { get; init; } = "latest";

    public bool ServiceMonitors { get; init; }

    public string? StorageClass { get; init; }

    public Uri? OtlpEndpoint { get; init; }

    /// <summary>Takes the publisher's options out of <paramref name="args"/>; the rest must be configuration (<c>--Key=value</c>).</summary>
    public static (KubernetesPublishOptions Options, string[] ConfigurationArgs) Parse(string[] args)
    {
        string? output = null, ns = null, registry = null, tag = null, storageClass = null, otlp = null;
        var monitors = false;
        var rest = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Value()
            {
                if (i + 1 >= args.Length || args[i + 1].StartsWith('-'))
                {
                    throw new PublishArgumentException($"{arg} needs a value.");
                }
                return args[++i];
            }
            switch (arg)
            {
                case "-o" or "--output-path": output = Value(); break;
                case "--namespace": ns = Value(); break;
                case "--registry": registry = Value(); break;
                case "--image-tag": tag = Value(); break;
                case "--storage-class": storageClass = Value(); break;
                case "--otlp-endpoint": otlp = Value(); break;
                case "--service-monitors": monitors = true; break;
                case "-h" or "--help": throw new PublishArgumentException("");
                default:
                    // Configuration such as --Parameters:model=X or --Parameters:model X passes through.
                    if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Contains(':', StringComparison.Ordinal))
                    {
                        rest.Add(arg);
                        if (!arg.Contains('=', StringComparison.Ordinal) && i + 1 < args.Length)
                        {
                            rest.Add(args[++i]);
                        }
                        break;
                    }
                    throw new PublishArgumentException($"Unknown publish option '{arg}'.");
            }
        }
        if (string.IsNullOrWhiteSpace(output))
        {
            throw new PublishArgumentException("--output-path is required.");
        }
        var options = new KubernetesPublishOptions
        {
            OutputPath = Path.GetFullPath(output),
            Namespace = ns ?? "vllmstack",
            Registry = registry?.TrimEnd('/'),
            ImageTag = tag ?? "latest",
            ServiceMonitors = monitors,
            StorageClass = storageClass,
            OtlpEndpoint = otlp is null ? null
                : Uri.TryCreate(otlp, UriKind.Absolute, out var url) && url.Scheme is "http" or "https" ? url
                : throw new PublishArgumentException($"--otlp-endpoint '{otlp}' must be an absolute http(s) URL."),
        };
        if (!DnsLabel().IsMatch(options.Namespace))
        {
            throw new PublishArgumentException($"--namespace '{options.Namespace}' must be a DNS label (lower-case letters, digits, '-').");
        }
        if (!ImageTagPattern().IsMatch(options.ImageTag))
        {
            throw new PublishArgumentException($"--image-tag '{options.ImageTag}' is not a valid image tag.");
        }
        return (options, [.. rest]);
    }

    [GeneratedRegex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
    private static partial Regex DnsLabel();

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    private static partial Regex ImageTagPattern();
}

/// <summary>A mistake on the publish command line; its message is shown with the usage.</summary>
public sealed class PublishArgumentException(string message) : ArgumentException(message);
