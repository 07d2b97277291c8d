using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.ServiceDiscovery;

namespace VllmStack.ServiceDefaults.Discovery;

/// <summary>
/// The base URLs of a service, for code that needs addresses rather than an HttpClient (the router's engine list,
/// the cache server the router asks, the router the autoscaler reads) and needs them at start-up, before the app's
/// container exists. Microsoft.Extensions.ServiceDiscovery's <see cref="ServiceEndpointResolver"/> reads them from
/// Aspire's <c>services__{name}__{scheme}__{index}</c> variables; HttpClients from <c>IHttpClientFactory</c> resolve
/// <c>http://name</c> and <c>https+http://name</c> themselves (<c>AddServiceDefaults</c>).
/// </summary>
public static class ServiceAddresses
{
    /// <summary>
    /// The endpoints of <paramref name="service"/>, a service URI such as <c>http+https://engine</c>: those of the first
    /// scheme that has any, in index order; none when nothing configures the service. Unlike an HttpClient's discovery,
    /// a name that is not configured is not passed through as a host name.
    /// </summary>
    public static async Task<IReadOnlyList<Uri>> ResolveAsync(IConfiguration configuration, string service, CancellationToken cancellationToken = default)
    {
        var query = new Uri(service, UriKind.Absolute);
        await using var provider = new ServiceCollection()
            .AddSingleton(configuration)
            .AddServiceDiscoveryCore()
            .AddConfigurationServiceEndpointProvider()
            .BuildServiceProvider();
        var resolver = provider.GetRequiredService<ServiceEndpointResolver>();
        ServiceEndpointSource source;
        try
        {
            source = await resolver.GetEndpointsAsync(service, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException)
        {
            // What the configuration provider throws for a value that is not an endpoint (a relative URL fails in its
            // scheme filter): named after the configuration key, so that the start-up error says what to fix.
            throw new InvalidOperationException($"services:{query.Host}: a value is not an endpoint URL ({e.Message})", e);
        }
        return [.. source.Endpoints.Select(e => ToUri(e.EndPoint, query))];
    }

    private static Uri ToUri(EndPoint endPoint, Uri query) => endPoint switch
    {
        UriEndPoint { Uri: { IsAbsoluteUri: true, Scheme: "http" or "https" } uri } => uri,
        // host:port without a scheme: the first scheme the query names.
        IPEndPoint ip => HostUri(query, ip.Address.ToString(), ip.Port),
        DnsEndPoint dns => HostUri(query, dns.Host, dns.Port),
        _ => throw new InvalidOperationException($"services:{query.Host}: '{endPoint}' is not an http(s) URL."),
    };

    private static Uri HostUri(Uri query, string host, int port) =>
        new UriBuilder(query.Scheme.Split('+')[0], host, port > 0 ? port : -1).Uri;
}
