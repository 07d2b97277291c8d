using System.Text.RegularExpressions;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using VllmStack.Hosting.Vllm;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// Names, labels and ports of published objects, in one place: the router's engine selector and the engine pods'
/// labels come from the same function, so they cannot drift apart.
/// </summary>
public static partial class KubernetesLabels
{
    public const string PartOf = "vllmstack";
    public const string NameLabel = "app.kubernetes.io/name";
    public const string PartOfLabel = "app.kubernetes.io/part-of";
    public const string ComponentLabel = "app.kubernetes.io/component";

    /// <summary>The port vLLM serves on inside its pod.</summary>
    public const int EnginePort = 8000;

    /// <summary>The labels a workload's selector (and its Service's) match.</summary>
    public static Dictionary<string, object?> SelectorLabels(IResource resource) => new()
    {
        [NameLabel] = resource.Name,
        [PartOfLabel] = PartOf,
    };

    /// <summary>Every label of the resource's objects and pods.</summary>
    public static Dictionary<string, object?> Labels(IResource resource)
    {
        var labels = SelectorLabels(resource);
        labels[ComponentLabel] = Component(resource);
        labels["app.kubernetes.io/managed-by"] = "vllmstack-publisher";
        return labels;
    }

    /// <summary>The label selector (<c>key=value,…</c>) of the resource's pods, as the router's <c>--k8s-label-selector</c>.</summary>
    public static string Selector(IResource resource) => string.Join(",", SelectorLabels(resource).Select(l => $"{l.Key}={l.Value}"));

    /// <summary>
    /// The label selector of the pods of all <paramref name="resources"/>: <see cref="Selector(IResource)"/> for one, a
    /// set-based selector (<c>name in (a,b),part-of=…</c>) for several, as the Kubernetes API accepts it.
    /// </summary>
    public static string Selector(IReadOnlyList<IResource> resources) => resources.Count == 1
        ? Selector(resources[0])
        : $"{NameLabel} in ({string.Join(",", resources.Select(r => r.Name))}),{PartOfLabel}={PartOf}";

    public static string Component(IResource resource) => resource switch
    {
        VllmResource => "engine",
        RedisResource => "redis",
        ProjectResource project => ProjectComponent(project.GetProjectMetadata().ProjectPath),
        _ => resource.Name,
    };

    /// <summary>
    /// The named ports of the resource's pods, which its Service exposes on the same numbers: vLLM serves <c>http</c> on
    /// 8000; other resources serve each endpoint on the model's target port, else our services on 8080 (8081… for
    /// further endpoints).
    /// </summary>
    public static IReadOnlyList<(string Name, int Port)> ContainerPorts(IResource resource)
    {
        if (resource is VllmResource)
        {
            return [("http", EnginePort)];
        }
        var endpoints = resource.Annotations.OfType<EndpointAnnotation>().DistinctBy(e => e.Name).ToList();
        return [.. endpoints.Select((e, index) => (e.Name, e.TargetPort ?? 8080 + index))];
    }

    /// <summary>The pod's (and Service's) port of <paramref name="endpoint"/>; the first port when the resource has no such endpoint.</summary>
    public static int ContainerPort(IResource resource, string endpoint)
    {
        var ports = ContainerPorts(resource);
        return ports.FirstOrDefault(p => p.Name == endpoint) is { Name: not null } found ? found.Port : ports.Count > 0 ? ports[0].Port : 8080;
    }

    /// <summary><c>VllmStack.Router</c> → <c>router</c>.</summary>
    private static string ProjectComponent(string projectPath)
    {
        var name = Path.GetFileNameWithoutExtension(projectPath);
        var dot = name.LastIndexOf('.');
        return (dot >= 0 ? name[(dot + 1)..] : name).ToLowerInvariant();
    }

    /// <summary>
    /// The image repository the .NET SDK's <c>PublishContainer</c> gives a project of ours (<c>VllmStack.Router</c> →
    /// <c>vllmstack-router</c>; set for every project in Directory.Build.props).
    /// </summary>
    public static string ImageRepository(string projectPath) => Path.GetFileNameWithoutExtension(projectPath).ToLowerInvariant().Replace('.', '-');

    /// <summary>
    /// Whether <paramref name="name"/> can name a Kubernetes object and a Service's DNS name (an RFC 1123 label: lower-case
    /// letters, digits and '-', at most 63, starting and ending with a letter or digit).
    /// </summary>
    public static bool IsObjectName(string name) => DnsLabel().IsMatch(name);

    [GeneratedRegex(@"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\z")]
    private static partial Regex DnsLabel();
}
