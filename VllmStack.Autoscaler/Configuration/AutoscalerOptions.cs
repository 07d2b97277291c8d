using VllmStack.Autoscaler.Policy;
using VllmStack.ServiceDefaults.Kubernetes;

namespace VllmStack.Autoscaler.Configuration;

/// <summary>Section <c>Autoscaler</c> of configuration: where to read load, what to scale and how.</summary>
public sealed class AutoscalerOptions
{
    public const string Section = "Autoscaler";

    /// <summary>Seconds between evaluations (each reads the router's <c>/engines</c> once).</summary>
    public double IntervalSeconds { get; set; } = 5;

    /// <summary>The router's URL; else the Aspire service <see cref="RouterService"/> (<c>services__router__http__0</c>).</summary>
    public string? Router { get; set; }

    public string RouterService { get; set; } = "router";

    /// <summary><c>local</c> (the AppHost's scaling API) or <c>kubernetes</c> (the Deployment's scale subresource).</summary>
    public string Actuator { get; set; } = "local";

    /// <summary>The AppHost's scaling API for the local actuator (the AppHost sets it for the autoscaler it runs).</summary>
    public string? ScalingApi { get; set; }

    public KubernetesScaleOptions Kubernetes { get; set; } = new();

    /// <summary>Timeout of each call to the router, the scaling API or the API server.</summary>
    public double RequestTimeoutSeconds { get; set; } = 5;

    /// <summary>What to scale: one entry per engine deployment (resource), each for one model.</summary>
    public List<ScaleTargetOptions> Targets { get; set; } = [];

    public IEnumerable<string> Validate()
    {
        if (IntervalSeconds <= 0 || RequestTimeoutSeconds <= 0)
        {
            yield return "Autoscaler:IntervalSeconds and RequestTimeoutSeconds must be positive";
        }
        if (Actuator is not ("local" or "kubernetes"))
        {
            yield return $"Autoscaler:Actuator must be local or kubernetes, not '{Actuator}'";
        }
        if (Actuator == "local" && !IsHttpUrl(ScalingApi))
        {
            yield return "Autoscaler:ScalingApi must be the AppHost's scaling API URL for the local actuator";
        }
        if (Actuator == "kubernetes")
        {
            if (Kubernetes.ApiServer is null)
            {
                yield return "Autoscaler:Kubernetes:ApiServer is not set and KUBERNETES_SERVICE_HOST is not in the environment (not in a pod?)";
            }
            if (string.IsNullOrWhiteSpace(Kubernetes.Namespace))
            {
                yield return "Autoscaler:Kubernetes:Namespace is required";
            }
        }
        if (Router is not null && !IsHttpUrl(Router))
        {
            yield return $"Autoscaler:Router '{Router}' must be an absolute http(s) URL";
        }
        if (Targets.Count == 0)
        {
            yield return "Autoscaler:Targets needs at least one entry (Name = the engine resource or Deployment, Model = its model)";
        }
        for (var i = 0; i < Targets.Count; i++)
        {
            var target = Targets[i];
            var prefix = $"Autoscaler:Targets:{i}";
            if (string.IsNullOrWhiteSpace(target.Name))
            {
                yield return $"{prefix}:Name is required";
            }
            if (Targets.Count > 1 && string.IsNullOrWhiteSpace(target.Model))
            {
                yield return $"{prefix}:Model is required when there are several targets";
            }
            foreach (var problem in target.Policy.Validate($"{prefix}:Policy"))
            {
                yield return problem;
            }
        }
    }

    private static bool IsHttpUrl(string? text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https";
}

/// <summary>One scaled deployment: its name (AppHost resource or Kubernetes Deployment), its model and its policy.</summary>
public sealed class ScaleTargetOptions
{
    public string Name { get; set; } = "";

    /// <summary>The model its engines serve, as the router lists it; optional with a single target (then all engines count).</summary>
    public string? Model { get; set; }

    public ScalingPolicyOptions Policy { get; set; } = new();

    /// <summary>For logs and metric labels.</summary>
    public string Label => Model is { Length: > 0 } model ? $"{Name} ({model})" : Name;
}

/// <summary>How the Kubernetes actuator reaches the API server; in a pod every default is right.</summary>
public sealed class KubernetesScaleOptions
{
    /// <summary>Namespace of the engine Deployments (default: the autoscaler's own).</summary>
    public string Namespace { get; set; } = InCluster.Namespace();

    public Uri? ApiServer { get; set; } = InCluster.ApiServer();

    public string TokenPath { get; set; } = InCluster.TokenPath;

    public string CaCertificatePath { get; set; } = InCluster.CaCertificatePath;
}
