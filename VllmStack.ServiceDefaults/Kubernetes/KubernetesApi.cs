using System.Net.Http.Headers;
using k8s;
using Microsoft.Extensions.Logging;

namespace VllmStack.ServiceDefaults.Kubernetes;

/// <summary>
/// Builds the KubernetesClient the router's discovery and the autoscaler's actuator talk through: the pod's service
/// account token (re-read for every request, see <see cref="ServiceAccountToken"/>), the cluster CA, and a timeout on
/// every call.
/// </summary>
public static class KubernetesApi
{
    /// <param name="apiServer">Base URL; <c>http://</c> is allowed for <c>kubectl proxy</c> and tests.</param>
    /// <param name="tokenPath">Bearer token file; absent or empty: no token is sent.</param>
    /// <param name="caCertificatePath">PEM bundle of the cluster CA; absent: the system roots are used.</param>
    /// <param name="requestTimeout">
    /// Bounds connecting, a watch's response headers, and every call that is not a watch; a watch's own lifetime is
    /// the caller's (its cancellation token).
    /// </param>
    public static k8s.Kubernetes Create(Uri apiServer, string? tokenPath, string? caCertificatePath, TimeSpan requestTimeout, string userAgent, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(apiServer);
        ArgumentNullException.ThrowIfNull(logger);
        var clusterCa = apiServer.Scheme == Uri.UriSchemeHttps ? ClusterCa.Load(caCertificatePath, logger) : null;
        var configuration = new KubernetesClientConfiguration
        {
            Host = apiServer.AbsoluteUri,
            TokenProvider = string.IsNullOrWhiteSpace(tokenPath) ? null : new ServiceAccountToken(tokenPath, logger),
            HttpClientTimeout = requestTimeout,
            UserAgent = new ProductInfoHeaderValue(userAgent, null).ToString(),
            FirstMessageHandlerSetup = handler =>
            {
                handler.ConnectTimeout = requestTimeout;
                // A watch abandoned mid-stream (410, cancellation) must close its connection, not be drained for reuse.
                handler.MaxResponseDrainSize = 0;
                if (clusterCa is { Count: > 0 })
                {
                    // Not KubernetesClientConfiguration.SslCaCerts: the package's check then accepts a certificate the
                    // cluster CA issued for another host name; ours does not (see ClusterCa).
                    handler.SslOptions.RemoteCertificateValidationCallback =
                        (_, certificate, chain, errors) => ClusterCa.IsTrusted(clusterCa, certificate, chain, errors);
                }
            },
        };
        return new k8s.Kubernetes(configuration, new ResponseHeadersTimeout(requestTimeout));
    }
}
