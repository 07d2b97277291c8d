namespace VllmStack.ServiceDefaults.Kubernetes;

/// <summary>Where a pod finds the API server and its own service account (the defaults of every Kubernetes option).</summary>
public static class InCluster
{
    public const string ServiceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount";

    public const string TokenPath = ServiceAccountDirectory + "/token";

    public const string CaCertificatePath = ServiceAccountDirectory + "/ca.crt";

    /// <summary>The pod's own namespace, or <c>default</c> outside a pod.</summary>
    public static string Namespace()
    {
        try
        {
            var value = File.ReadAllText(Path.Combine(ServiceAccountDirectory, "namespace")).Trim();
            return value.Length > 0 ? value : "default";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "default";
        }
    }

    /// <summary>The API server from <c>KUBERNETES_SERVICE_HOST</c>/<c>_PORT</c>, or null outside a pod.</summary>
    public static Uri? ApiServer()
    {
        var host = Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_HOST");
        if (string.IsNullOrWhiteSpace(host))
        {
            return null;
        }
        var port = Environment.GetEnvironmentVariable("KUBERNETES_SERVICE_PORT");
        // The service host is an IP literal; IPv6 clusters need it bracketed in a URL.
        var authority = host.Contains(':') && !host.StartsWith('[') ? $"[{host}]" : host;
        return Uri.TryCreate($"https://{authority}:{(string.IsNullOrWhiteSpace(port) ? "443" : port.Trim())}/", UriKind.Absolute, out var uri)
            ? uri
            : null;
    }
}
