using System.Globalization;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using VllmStack.Hosting.Common;
using VllmStack.Hosting.Kubernetes;
using VllmStack.Hosting.Vllm;

namespace VllmStack.Hosting.Router;

public static class RouterBuilderExtensions
{
    /// <summary>
    /// The OpenAI-compatible router (<typeparamref name="TProject"/>: <c>Projects.VllmStack_Router</c>) on
    /// <paramref name="port"/> (else a port Aspire picks), healthy when its <c>/health</c> answers.
    /// </summary>
    public static IResourceBuilder<ProjectResource> AddVllmRouter<TProject>(this IDistributedApplicationBuilder builder, string name, int? port = null)
        where TProject : IProjectMetadata, new() =>
        builder.AddServiceProject<TProject>(name)
            .WithHttpEndpoint(port: port, name: "http")
            .WithHttpHealthCheck("/health");

    /// <summary>
    /// Routes to every replica of <paramref name="engines"/>, also those started or retired while running: locally the
    /// engine group keeps a dynamic config file to its healthy replicas and the router re-reads it within a second;
    /// published, the router watches the engine pods by their labels (and its service account may list and watch pods).
    /// Engines that require a key get it from the router.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithEngines(this IResourceBuilder<ProjectResource> router, IResourceBuilder<VllmResource> engines)
    {
        if (engines.Resource.ApiKey is { } key)
        {
            router.WithEnvironment("Router__Forwarding__EngineApiKey", key);
        }
        if (router.ApplicationBuilder.ExecutionContext.IsPublishMode)
        {
            return router
                .WithAnnotation(new KubernetesAccessAnnotation("", "pods", ["get", "list", "watch"]))
                .WithArgs("--service-discovery", "k8s", "--k8s-label-selector", KubernetesLabels.Selector(engines.Resource),
                    "--k8s-port", KubernetesLabels.EnginePort.ToString(CultureInfo.InvariantCulture));
        }
        var file = Path.Combine(Path.GetTempPath(), "vllmstack", $"{router.Resource.Name}-engines-{Guid.NewGuid():N}.json");
        EngineGroupController.Of(engines.Resource)?.AddEngineList(file);
        return router
            .WithAnnotation(new EngineListAnnotation(engines.Resource, file))
            .WithArgs("--dynamic-config-json", file);
    }
}
