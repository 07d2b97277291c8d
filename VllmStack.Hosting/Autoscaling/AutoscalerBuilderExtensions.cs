using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Builder;
using VllmStack.Hosting.Publishing;
using VllmStack.Hosting.Vllm;

namespace VllmStack.Hosting.Autoscaling;

/// <summary>
/// <c>AddAutoscaler("autoscaler", router).WithScaleTarget(engine, p =&gt; { p.MaxReplicas = 4; })</c>: the autoscaler
/// reads load through <paramref name="router"/> and scales engine resources through the AppHost's control API.
/// </summary>
public static class AutoscalerBuilderExtensions
{
    public static IResourceBuilder<ProjectResource> AddAutoscaler(this DistributedApplicationBuilder builder, string name, IResourceBuilder<IResource> router)
    {
        var autoscaler = builder.AddProjectByName(name, "VllmStack.Autoscaler")
            .WithHttpHealthCheck("/health")
            .WithAnnotation(new SingleInstanceAnnotation())
            .WithEnvironment("Autoscaler__RouterService", router.Resource.Name)
            .WithReference(router)
            .WaitFor(router);
        // On Kubernetes it patches the engine Deployments' scale subresource (its Role allows just that); locally it asks the AppHost.
        return builder.ExecutionContext.IsPublishMode
            ? autoscaler.WithEnvironment("Autoscaler__Actuator", "kubernetes")
            : autoscaler.WithEnvironment("Autoscaler__Actuator", "local").WithAnnotation(new ControlApiAnnotation("Autoscaler__ControlApi"));
    }

    /// <summary>Scales <paramref name="engines"/> (its model as the router lists it) with the given policy.</summary>
    public static IResourceBuilder<ProjectResource> WithScaleTarget(this IResourceBuilder<ProjectResource> autoscaler, IResourceBuilder<VllmResource> engines,
        Action<AutoscalePolicy>? configure = null)
    {
        var index = autoscaler.Resource.Annotations.OfType<ScaleTargetAnnotation>().Count();
        var policy = new AutoscalePolicy();
        configure?.Invoke(policy);
        var prefix = $"Autoscaler__Targets__{index}__";
        return autoscaler
            .WithAnnotation(new ScaleTargetAnnotation(engines.Resource, policy))
            .WithAnnotation(new KubernetesAccessAnnotation("apps", "deployments/scale", ["get", "patch"], [engines.Resource.Name]))
            .WithAnnotation(new EnvironmentAnnotation(context =>
                [
                    new(prefix + "Name", engines.Resource.Name),
                    new(prefix + "Model", context.Runtime.ParameterValue(engines.Resource.Model)),
                    .. policy.Settings().Select(s => new KeyValuePair<string, string>(prefix + "Policy__" + s.Key, s.Value)),
                ]));
    }
}

/// <summary>An engine resource the autoscaler scales, with its policy (also for the publisher).</summary>
public sealed record ScaleTargetAnnotation(VllmResource Engines, AutoscalePolicy Policy) : IResourceAnnotation;
