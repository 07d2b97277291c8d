using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace VllmStack.ServiceDefaults.Kubernetes;

/// <summary>
/// Plain HTTPS to the Kubernetes API server (KubernetesClient does not restore here): the server's certificate must
/// chain to the cluster CA, the service-account token is re-read for every request (projected tokens rotate), and a
/// non-success answer becomes a <see cref="KubernetesApiException"/> carrying the API's Status message.
/// </summary>
public sealed partial class KubernetesApiClient : IDisposable
{
    private const int MaxErrorBodyBytes = 8 * 1024;

    private readonly HttpClient _http;
    private readonly string? _tokenPath;
    private readonly ILogger _logger;
    private int _warnedMissingToken;

    /// <param name="apiServer">Base URL; <c>http://</c> is allowed for <c>kubectl proxy</c> and tests.</param>
    /// <param name="tokenPath">Bearer token file; absent or empty: no token is sent.</param>
    /// <param name="caCertificatePath">PEM bundle of the cluster CA; absent: the system roots are used.</param>
    /// <param name="connectTimeout">Connect timeout; callers bound each request with their own deadline.</param>
    public KubernetesApiClient(Uri apiServer, string? tokenPath, string? caCertificatePath, TimeSpan connectTimeout, string userAgent, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(apiServer);
        _tokenPath = tokenPath;
        _logger = logger;
        var clusterCa = apiServer.Scheme == Uri.UriSchemeHttps ? LoadClusterCa(caCertificatePath) : null;
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = connectTimeout,
            // A watch abandoned mid-stream (410, cancellation) must close its connection, not be drained for reuse.
            MaxResponseDrainSize = 0,
            AutomaticDecompression = DecompressionMethods.GZip,
        };
        if (clusterCa is { Count: > 0 })
        {
            handler.SslOptions.RemoteCertificateValidationCallback =
                (_, certificate, chain, errors) => IsTrustedByClusterCa(clusterCa, certificate, chain, errors);
        }
        _http = new HttpClient(handler, disposeHandler: true)
        {
            // A relative URL must land under any path prefix the API server URL has (e.g. behind a proxy).
            BaseAddress = apiServer.AbsoluteUri.EndsWith('/') ? apiServer : new Uri(apiServer.AbsoluteUri + "/"),
            // Watches are long-lived; each call gets its own deadline instead.
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue(userAgent, null));
    }

    /// <summary>
    /// Sends a request with a freshly read token and returns the response once its headers are in; a non-success
    /// status becomes a <see cref="KubernetesApiException"/> (the response is then disposed).
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string relativeUrl, HttpContent? content, string verb, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, relativeUrl) { Content = content };
        if (await ReadTokenAsync(cancellationToken).ConfigureAwait(false) is { } token)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (response.IsSuccessStatusCode)
        {
            return response;
        }
        using (response)
        {
            var message = await ReadStatusMessageAsync(response, cancellationToken).ConfigureAwait(false);
            throw new KubernetesApiException(response.StatusCode, verb, message);
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>The <c>message</c> of a Kubernetes Status object, or null when the text is not one.</summary>
    public static string? TryReadStatusMessage(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String
                ? message.GetString()
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// Accepts the API server's certificate only if it chains to the cluster CA (as kubectl does: the system
    /// roots are not trusted for the cluster) and was issued for the host connected to.
    /// </summary>
    public static bool IsTrustedByClusterCa(X509Certificate2Collection clusterCa, X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        // The cluster CA can vouch for an unknown issuer, not for a wrong host name or a missing certificate.
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(clusterCa);
        // Cluster CAs publish no revocation lists.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }
        if (certificate is X509Certificate2 leaf)
        {
            return chain.Build(leaf);
        }
        using var loaded = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(loaded);
    }

    private async Task<string?> ReadTokenAsync(CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(_tokenPath))
        {
            return null;
        }
        try
        {
            var token = (await File.ReadAllTextAsync(_tokenPath, cancellationToken).ConfigureAwait(false)).Trim();
            return token.Length > 0 ? token : null;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            // Fine behind `kubectl proxy`; say so once in case it is not.
            if (Interlocked.Exchange(ref _warnedMissingToken, 1) == 0)
            {
                LogMissingToken(_tokenPath);
            }
            return null;
        }
    }

    private static async Task<string> ReadStatusMessageAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            var buffer = new byte[MaxErrorBodyBytes];
            var length = 0;
            int read;
            while (length < buffer.Length && (read = await body.ReadAsync(buffer.AsMemory(length), cancellationToken).ConfigureAwait(false)) > 0)
            {
                length += read;
            }
            var text = Encoding.UTF8.GetString(buffer, 0, length);
            return TryReadStatusMessage(text) ?? (text.Length > 200 ? text[..200] : text);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return response.ReasonPhrase ?? "";
        }
    }

    private X509Certificate2Collection? LoadClusterCa(string? path)
    {
        if (string.IsNullOrWhiteSpace(path) || !File.Exists(path))
        {
            LogMissingClusterCa(path ?? "");
            return null;
        }
        var ca = new X509Certificate2Collection();
        ca.ImportFromPemFile(path);
        return ca;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "No service account token at {TokenPath}; calling the Kubernetes API without credentials")]
    private partial void LogMissingToken(string tokenPath);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster CA '{Path}' not found; the API server's certificate is checked against the system roots instead")]
    private partial void LogMissingClusterCa(string path);
}
