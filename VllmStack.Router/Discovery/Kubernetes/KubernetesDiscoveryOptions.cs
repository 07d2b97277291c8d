using VllmStack.ServiceDefaults.Kubernetes;

namespace VllmStack.Router.Discovery;

/// <summary>
/// Where to find engine pods and how to reach the Kubernetes API server: section <c>Router:Kubernetes</c>.
/// Defaults are those of a pod's service account, so in-cluster only <see cref="LabelSelector"/> must be given.
/// </summary>
public sealed class KubernetesDiscoveryOptions
{
    /// <summary>Namespace of the engine pods; defaults to the router's own namespace.</summary>
    public string Namespace { get; set; } = InCluster.Namespace();

    /// <summary>Label selector of the engine pods, e.g. <c>app=vllm-engine</c>.</summary>
    public string LabelSelector { get; set; } = "";

    /// <summary>Port the engines serve their OpenAI API on.</summary>
    public int Port { get; set; } = 8000;

    /// <summary>Base URL of the API server; <c>http://</c> is allowed for <c>kubectl proxy</c> and tests.</summary>
    public Uri? ApiServer { get; set; } = InCluster.ApiServer();

    /// <summary>Bearer token file, re-read for every request because projected tokens rotate. Absent: no token is sent.</summary>
    public string TokenPath { get; set; } = InCluster.TokenPath;

    /// <summary>PEM bundle of the cluster CA that must sign the API server's certificate. Absent: the system roots are used.</summary>
    public string CaCertificatePath { get; set; } = InCluster.CaCertificatePath;

    /// <summary>Timeout of a list request and of a watch's response headers.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Server-side lifetime of one watch (<c>timeoutSeconds</c>); the router then re-watches from where it was.</summary>
    public int WatchTimeoutSeconds { get; set; } = 300;

    /// <summary>First wait after a failure; doubles per consecutive failure up to <see cref="MaxReconnectDelay"/>.</summary>
    public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(30);

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Namespace))
        {
            yield return "Kubernetes:Namespace (--k8s-namespace) is required";
        }
        if (string.IsNullOrWhiteSpace(LabelSelector))
        {
            yield return "Kubernetes:LabelSelector (--k8s-label-selector) is required to tell engine pods apart";
        }
        if (Port is < 1 or > 65535)
        {
            yield return $"Kubernetes:Port {Port} is not a TCP port";
        }
        if (ApiServer is null)
        {
            yield return "Kubernetes:ApiServer is not set and KUBERNETES_SERVICE_HOST is not in the environment (not running in a pod?)";
        }
        else if (!ApiServer.IsAbsoluteUri || ApiServer.Scheme is not ("https" or "http"))
        {
            yield return $"Kubernetes:ApiServer '{ApiServer}' must be an absolute http(s) URL";
        }
        if (RequestTimeout <= TimeSpan.Zero)
        {
            yield return "Kubernetes:RequestTimeout must be positive";
        }
        if (WatchTimeoutSeconds < 1)
        {
            yield return "Kubernetes:WatchTimeoutSeconds must be at least 1";
        }
        if (ReconnectDelay <= TimeSpan.Zero || MaxReconnectDelay < ReconnectDelay)
        {
            yield return "Kubernetes:ReconnectDelay must be positive and not above MaxReconnectDelay";
        }
    }
}
