using System.Diagnostics;
using System.Net.Http.Headers;

namespace VllmStack.Router.Forwarding;

/// <summary>
/// Which headers cross the router, in each direction (RFC 9110 §7.6.1: hop-by-hop headers never do): the router's
/// policy, applied in YARP's request transform; the response headers are YARP's own copy.
/// </summary>
public static class ProxyHeaders
{
    public const string RequestId = "x-request-id";

    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade", "Host", "Content-Length", "Expect",
    };

    /// <summary>W3C Trace Context, baggage and their older .NET forms: the router's own span context goes upstream instead.</summary>
    private static readonly HashSet<string> TraceContext = new(StringComparer.OrdinalIgnoreCase)
    {
        "traceparent", "tracestate", "baggage", "Request-Id", "Correlation-Context",
    };

    /// <summary>
    /// The runtime's HttpClient source: when something listens to it, HttpClient starts the client span and writes its
    /// context itself (only where the request has none, so the client's own must not pass through).
    /// </summary>
    private static readonly ActivitySource HttpClientSource = new("System.Net.Http");

    public static bool IsHopByHop(string name) => HopByHop.Contains(name);

    /// <summary>
    /// Client → engine: everything end-to-end, the engine key instead of the client's Authorization when one is set, and
    /// — while the router's request is traced — the router's trace context instead of the client's, so that the engine's
    /// span nests under the router's in the same trace.
    /// </summary>
    public static void CopyToUpstream(IHeaderDictionary from, HttpRequestMessage to, string requestId, string? engineApiKey)
    {
        var connectionTokens = ConnectionTokens(from);
        var activity = Activity.Current;
        foreach (var (name, values) in from)
        {
            if (IsHopByHop(name) || connectionTokens.Contains(name) || name.Equals(RequestId, StringComparison.OrdinalIgnoreCase)
                || (activity is not null && TraceContext.Contains(name)))
            {
                continue;
            }
            if (engineApiKey is not null && name.Equals("Authorization", StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            if (!to.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                to.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }
        to.Headers.TryAddWithoutValidation(RequestId, requestId);
        if (activity is not null && !HttpClientSource.HasListeners())
        {
            // Nothing will start a client span: the router's request span is the engine's parent.
            DistributedContextPropagator.Current.Inject(activity, to,
                static (carrier, name, value) => ((HttpRequestMessage)carrier!).Headers.TryAddWithoutValidation(name, value));
        }
        if (engineApiKey is not null)
        {
            to.Headers.Authorization = new AuthenticationHeaderValue("Bearer", engineApiKey);
        }
    }

    /// <summary>
    /// Engine → client, after YARP copied the end-to-end headers: the request id is the router's (the one the client
    /// sent, or a new one), whatever the engine echoed.
    /// </summary>
    public static void AfterResponseCopied(HttpResponse to, string requestId) => to.Headers[RequestId] = requestId;

    private static HashSet<string> ConnectionTokens(IHeaderDictionary headers)
    {
        var tokens = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var value in headers.Connection)
        {
            foreach (var token in (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                tokens.Add(token);
            }
        }
        return tokens;
    }
}
