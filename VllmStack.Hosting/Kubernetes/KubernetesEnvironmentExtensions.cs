using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Pipelines;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>The application's Kubernetes environment: <c>builder.AddKubernetesEnvironment("kubernetes")</c>, once per AppHost.</summary>
public static class KubernetesEnvironmentExtensions
{
    /// <summary>
    /// Publishes the application to Kubernetes. In publish mode (<c>aspire publish -o DIR</c>, or the AppHost run with
    /// <c>--operation publish --step publish --output-path DIR</c>) a pipeline step <c>publish-NAME</c>, required by
    /// Aspire's <c>publish</c> step, writes every resource of the model as kustomize-ready manifests into the output
    /// folder: Deployments (a StatefulSet for Redis), Services, ServiceAccounts with exactly-scoped Roles, one ConfigMap
    /// per resource plus a <c>parameters</c> ConfigMap, a Secret generated from <c>secrets.env</c> (keys only: values are
    /// never written, except a random one for an empty generated password), optional ServiceMonitors, a Grafana
    /// dashboard, and <c>kustomization.yaml</c>. Options come from <see cref="WithProperties"/> and the <c>Kubernetes</c>
    /// configuration section (<see cref="KubernetesPublishOptions"/>); a bad one fails the step with its reason, and the
    /// AppHost exits with code 2. In run mode nothing is added to the model, so the dashboard shows no such resource.
    /// </summary>
    public static IResourceBuilder<KubernetesEnvironmentResource> AddKubernetesEnvironment(this IDistributedApplicationBuilder builder,
        [ResourceName] string name)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var environment = new KubernetesEnvironmentResource(name);
        if (!builder.ExecutionContext.IsPublishMode)
        {
            // A builder for a resource outside the model: WithProperties still works, the dashboard shows nothing.
            return builder.CreateResourceBuilder(environment);
        }
        var configuration = builder.Configuration;
#pragma warning disable ASPIREPIPELINES001 // Pipeline steps are experimental in Aspire 13.6 and the only way to take part in `aspire publish`.
        builder.Pipeline.AddStep($"publish-{name}",
            context => new KubernetesPublisher(environment, configuration).PublishAsync(context),
            requiredBy: WellKnownPipelineSteps.Publish);
#pragma warning restore ASPIREPIPELINES001
        // Aspire's own manifest (`aspire do publish-manifest`) has no form for this resource.
        return builder.AddResource(environment).ExcludeFromManifest();
    }

    /// <summary>Sets publish options in code, e.g. <c>.WithProperties(k8s => k8s.Options.ServiceMonitors = true)</c>; configuration still overrides them.</summary>
    public static IResourceBuilder<KubernetesEnvironmentResource> WithProperties(this IResourceBuilder<KubernetesEnvironmentResource> builder,
        Action<KubernetesEnvironmentResource> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        configure(builder.Resource);
        return builder;
    }
}
