using System.Globalization;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using VllmStack.Hosting.Common;
using VllmStack.Hosting.Kubernetes;
using VllmStack.Hosting.Lora;
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
    /// Engines that require a key get it from the router. The groups' LoRA adapters become the router's adapter catalogue
    /// (<c>--lora-adapters-file</c>), and the router's LoRA manager loads them where requests for them go.
    /// </summary>
    /// <remarks>
    /// A router may serve several groups (one per model): called again, it adds the group to the same engine list — one
    /// dynamic config file locally, one label selector over the groups' pods when published. The groups must share one
    /// engine key (or none): the router sends one.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The group's key differs from that of a group the router already serves.</exception>
    public static IResourceBuilder<ProjectResource> WithEngines(this IResourceBuilder<ProjectResource> router, IResourceBuilder<VllmResource> engines)
    {
        var served = router.Resource.Annotations.OfType<RouterEnginesAnnotation>().FirstOrDefault();
        if (served is not null && served.Groups.Any(g => g.ApiKey != engines.Resource.ApiKey))
        {
            throw new InvalidOperationException(
                $"Router '{router.Resource.Name}' sends one engine key, but engine group '{engines.Resource.Name}' has a different one from the groups it already serves.");
        }
        var first = served is null;
        if (served is null)
        {
            served = new RouterEnginesAnnotation(router.ApplicationBuilder.ExecutionContext.IsPublishMode
                ? null
                : new EngineListFile(Path.Combine(Path.GetTempPath(), "vllmstack", $"{router.Resource.Name}-engines-{Guid.NewGuid():N}.json")));
            router.WithAnnotation(served);
        }
        served.Groups.Add(engines.Resource);
        engines.Resource.LoraAdaptersManagedByRouter = true;
        if (served.File is { } file)
        {
            EngineGroupController.Of(engines.Resource)?.AddEngineList(file);
            router.WithAnnotation(new EngineListAnnotation(engines.Resource, file.Path));
        }
        if (!first)
        {
            return router;
        }
        AddLoraAdapterCatalogue(router, served);
        if (engines.Resource.ApiKey is { } key)
        {
            router.WithEnvironment("Router__Forwarding__EngineApiKey", key);
        }
        if (served.File is { } list)
        {
            return router.WithArgs("--dynamic-config-json", list.Path);
        }
        // The selector is read when the arguments are, so that it covers the groups added after this call too.
        return router
            .WithAnnotation(new KubernetesAccessAnnotation("", "pods", ["get", "list", "watch"]))
            .WithArgs(context =>
            {
                context.Args.Add("--service-discovery");
                context.Args.Add("k8s");
                context.Args.Add("--k8s-label-selector");
                context.Args.Add(KubernetesLabels.Selector(served.Groups));
                context.Args.Add("--k8s-port");
                context.Args.Add(KubernetesLabels.EnginePort.ToString(CultureInfo.InvariantCulture));
            });
    }

    /// <summary>
    /// The catalogue of the LoRA adapters of every group the router serves, given to its LoRA manager when some group has
    /// adapters (whether one has is read at start, so adapters declared after <c>WithEngines</c> count too), with the
    /// engines' adapter slots (<c>--max-loras</c>). Locally a file written once before the resources start (the router's
    /// admin API may rewrite it afterwards) and deleted when the application stops; published, the ConfigMap
    /// <c>{router}-lora-adapters</c> mounted into the router's pods, which the router may get and patch.
    /// </summary>
    private static void AddLoraAdapterCatalogue(IResourceBuilder<ProjectResource> router, RouterEnginesAnnotation served)
    {
        var builder = router.ApplicationBuilder;
        string path;
        string? configMap = null;
        if (builder.ExecutionContext.IsPublishMode)
        {
            configMap = LoraAdapterCatalogue.ConfigMapName(router.Resource.Name);
            var file = new KubernetesConfigFileAnnotation(configMap, LoraAdapterCatalogue.KubernetesDirectory, LoraAdapterCatalogue.FileName,
                async cancellationToken => served.ServesLoraAdapters
                    ? await LoraAdapterCatalogue.RenderAsync(served.Groups, cancellationToken).ConfigureAwait(false)
                    : null,
                ["get", "update"]);
            router.WithAnnotation(file);
            path = file.MountedPath;
        }
        else
        {
            path = Path.Combine(Path.GetTempPath(), "vllmstack", $"{router.Resource.Name}-lora-adapters-{Guid.NewGuid():N}.json");
            builder.Eventing.Subscribe<BeforeStartEvent>(async (e, cancellationToken) =>
            {
                if (!served.ServesLoraAdapters)
                {
                    return;
                }
                AtomicFile.Write(path, await LoraAdapterCatalogue.RenderAsync(served.Groups, cancellationToken).ConfigureAwait(false));
                e.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopped.Register(() =>
                {
                    File.Delete(path);
                    File.Delete(path + ".lock"); // the routers' lock file for admin changes (VllmStack.Router/Lora/LoraCatalogStore.cs)
                });
            });
        }
        router.WithArgs(context =>
        {
            if (!served.ServesLoraAdapters)
            {
                return;
            }
            context.Args.Add("--lora-adapters-file");
            context.Args.Add(path);
            // Engines report their slots (vllm:lora_requests_info{max_lora}) only once they have run a step; until then the
            // router counts on this many. The fewest of the groups': never more adapters than an engine holds.
            context.Args.Add("--max-loras");
            context.Args.Add(served.Groups.Where(g => g.ServesLoraAdapters).Min(g => g.Options.MaxLoras ?? 1).ToString(CultureInfo.InvariantCulture));
            if (configMap is not null)
            {
                context.Args.Add("--lora-adapters-configmap");
                context.Args.Add(configMap);
            }
        });
    }

    /// <summary>The engine groups a router serves, and locally the one engine list they share.</summary>
    private sealed record RouterEnginesAnnotation(EngineListFile? File) : IResourceAnnotation
    {
        public List<VllmResource> Groups { get; } = [];

        public bool ServesLoraAdapters => Groups.Any(g => g.ServesLoraAdapters);
    }
}
