using Microsoft.Extensions.Configuration;

namespace VllmStack.ServiceDefaults.Discovery;

/// <summary>
/// Lets HttpClient callers use logical addresses such as <c>http://router/v1/models</c> or Aspire's
/// <c>https+http://router</c>: the host is replaced by an endpoint from <see cref="ServiceEndpoints"/>,
/// rotating over replicas. Hosts that are not service names pass through untouched.
/// </summary>
public sealed class ServiceDiscoveryHandler(IConfiguration configuration) : DelegatingHandler
{
    private int _next;

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.RequestUri is { } uri && Rewrite(uri) is { } resolved)
        {
            request.RequestUri = resolved;
        }
        return base.SendAsync(request, cancellationToken);
    }

    internal Uri? Rewrite(Uri uri)
    {
        if (!uri.IsAbsoluteUri || uri.HostNameType != UriHostNameType.Dns || uri.Host.Contains('.') || uri.IsLoopback)
        {
            return null;
        }
        var schemes = uri.Scheme.Split('+', StringSplitOptions.RemoveEmptyEntries);
        var endpoints = ServiceEndpoints.Resolve(configuration, uri.Host, schemes);
        if (endpoints.Count == 0)
        {
            return null;
        }
        var target = endpoints[(int)((uint)Interlocked.Increment(ref _next) % (uint)endpoints.Count)];
        var builder = new UriBuilder(uri) { Scheme = target.Scheme, Host = target.Host, Port = target.Port };
        return builder.Uri;
    }
}
