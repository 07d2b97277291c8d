using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using VllmStack.Hosting.Common;
using Aspire.Hosting.Eventing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using VllmStack.Hosting.Kubernetes;
using VllmStack.Hosting.Vllm;

namespace VllmStack.Hosting.Autoscaler;

/// <summary>An engine group the autoscaler scales, with its policy (also for the publisher).</summary>
public sealed record ScaleTargetAnnotation(VllmResource Engines, AutoscalePolicy Policy) : IResourceAnnotation;

public static class AutoscalerBuilderExtensions
{
    /// <summary>The replicas an engine group may scale to when its policy sets no maximum (the autoscaler's default).</summary>
    public const int DefaultMaxReplicas = 4;

    /// <summary>
    /// The autoscaler (<typeparamref name="TProject"/>: <c>Projects.VllmStack_Autoscaler</c>): it reads load through
    /// <paramref name="router"/> and scales engine groups — locally through the AppHost's scaling API, published through
    /// the Deployments' scale subresource. One instance at a time.
    /// </summary>
    public static IResourceBuilder<ProjectResource> AddAutoscaler<TProject>(this IDistributedApplicationBuilder builder, string name,
        IResourceBuilder<ProjectResource> router) where TProject : IProjectMetadata, new()
    {
        var autoscaler = builder.AddServiceProject<TProject>(name)
            .WithHttpEndpoint(name: "http")
            .WithHttpHealthCheck("/health")
            .WithAnnotation(new SingleInstanceAnnotation())
            .WithEnvironment("Autoscaler__RouterService", router.Resource.Name)
            .WithReference(router)
            .WaitFor(router);
        if (builder.ExecutionContext.IsPublishMode)
        {
            return autoscaler.WithEnvironment("Autoscaler__Actuator", "kubernetes");
        }
        var api = ScalingApiFor(builder);
        return autoscaler
            .WithEnvironment("Autoscaler__Actuator", "local")
            .WithEnvironment(context => context.EnvironmentVariables["Autoscaler__ScalingApi"] =
                api.Url?.ToString() ?? throw new InvalidOperationException("The scaling API has not started."));
    }

    /// <summary>
    /// Scales <paramref name="engines"/> (its model as the router lists it) with the given policy; the group gets replicas
    /// declared up to the policy's maximum, started and stopped as the autoscaler decides.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithScaleTarget(this IResourceBuilder<ProjectResource> autoscaler, IResourceBuilder<VllmResource> engines,
        Action<AutoscalePolicy>? configure = null)
    {
        var index = autoscaler.Resource.Annotations.OfType<ScaleTargetAnnotation>().Count();
        var policy = new AutoscalePolicy();
        configure?.Invoke(policy);
        EngineGroupController.EnsureReplicas(engines, Math.Max(engines.Resource.Replicas, policy.MaxReplicas ?? DefaultMaxReplicas));
        var prefix = $"Autoscaler__Targets__{index}__";
        autoscaler
            .WithAnnotation(new ScaleTargetAnnotation(engines.Resource, policy))
            .WithAnnotation(new KubernetesAccessAnnotation("apps", "deployments/scale", ["get", "patch"], [engines.Resource.Name]))
            .WithEnvironment(prefix + "Name", engines.Resource.Name)
            .WithEnvironment(prefix + "Model", engines.Resource.Model);
        foreach (var (key, value) in policy.Settings())
        {
            autoscaler.WithEnvironment(prefix + "Policy__" + key, value);
        }
        return autoscaler;
    }

    /// <summary>The application's scaling API: started before the resources, stopped with the application.</summary>
    private static ScalingApi ScalingApiFor(IDistributedApplicationBuilder builder)
    {
        if (builder.Services.FirstOrDefault(d => d.ServiceType == typeof(ScalingApi))?.ImplementationInstance is ScalingApi existing)
        {
            return existing;
        }
        var api = new ScalingApi(builder.Services.TryAddEngineGroupRegistry());
        builder.Services.TryAddSingleton(api);
        builder.Eventing.Subscribe<BeforeStartEvent>(async (e, cancellationToken) =>
        {
            await api.StartAsync(cancellationToken).ConfigureAwait(false);
            e.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopped.Register(() => _ = api.DisposeAsync().AsTask());
        });
        return api;
    }
}
