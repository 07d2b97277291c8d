using System.Net;
using System.Net.Sockets;
using System.Text;
using VllmStack.Router.Configuration;

namespace VllmStack.Router.Forwarding;

/// <summary>How one attempt at an engine ended before anything reached the client.</summary>
public enum AttemptError
{
    /// <summary>Response headers arrived (any status).</summary>
    None,

    /// <summary>The connection could not be opened: engine-side, and the request never left, so it may go elsewhere.</summary>
    ConnectFailure,

    /// <summary>The connection broke before response headers: engine-side.</summary>
    ResetBeforeHeaders,

    /// <summary>No response headers within <c>Forwarding:ResponseHeadersTimeout</c>: engine-side.</summary>
    ResponseHeadersTimeout,

    /// <summary>The outgoing request could not be built or sent as given (a header, the URL): the request's problem.</summary>
    RequestCreation,

    /// <summary>The client's own body failed or grew too large while it streamed: the request's problem.</summary>
    ClientBody,

    /// <summary>
    /// The connection broke while the request body was still going out: the engine may have answered early and closed
    /// (refusing the request) or died. Ambiguous, so not the engine's failure; the request is not sent again.
    /// </summary>
    BodyNotAccepted,

    /// <summary>The client left.</summary>
    Canceled,
}

/// <summary>The end of one attempt: the response (headers in, body still streaming) or why there is none.</summary>
public sealed record AttemptResult(HttpResponseMessage? Response, AttemptError Error, string? Detail = null);

/// <summary>
/// Sends requests to engines over pooled keep-alive connections and tells engine-side failures from the request's own:
/// the router judges an engine only by the first kind. Header values travel byte for byte as clients sent them (UTF-8
/// or Latin-1 obs-text, which vLLM's uvicorn accepts), so an unusual header never stops a request.
/// </summary>
public sealed class EngineForwarder : IDisposable
{
    private readonly HttpMessageInvoker _invoker;
    private readonly ForwardingOptions _options;

    public EngineForwarder(RouterOptions options)
    {
        _options = options.Forwarding;
        _invoker = new HttpMessageInvoker(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(_options.ConnectTimeout),
            // Under uvicorn's keep-alive (vLLM: VLLM_HTTP_TIMEOUT_KEEP_ALIVE, 5 s), so the router never reuses a
            // connection the engine is closing.
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(4),
            // Re-resolve DNS now and then: engine Services and pods move.
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            MaxConnectionsPerServer = int.MaxValue,
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            // Latin-1 both ways (as the router's Kestrel decodes them): every header byte goes out as it came in.
            RequestHeaderEncodingSelector = (_, _) => Encoding.Latin1,
            ResponseHeaderEncodingSelector = (_, _) => Encoding.Latin1,
        }, disposeHandler: true);
    }

    /// <summary>
    /// Sends <paramref name="content"/> to <paramref name="path"/> on <paramref name="engine"/> with the client's end-to-end
    /// headers; returns when response headers arrive. Never throws for a failed attempt: <see cref="AttemptResult.Error"/> says why.
    /// </summary>
    public async Task<AttemptResult> SendAsync(HttpRequest client, Uri engine, string path, ForwardedContent content, string requestId, CancellationToken clientAborted)
    {
        HttpRequestMessage upstream;
        try
        {
            upstream = new HttpRequestMessage(HttpMethod.Post, new Uri(engine, path.TrimStart('/') + client.QueryString.Value))
            {
                Version = HttpVersion.Version11,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                Content = content,
            };
            ProxyHeaders.CopyToUpstream(client.Headers, upstream, requestId, _options.EngineApiKey);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
        {
            content.Dispose();
            return new AttemptResult(null, AttemptError.RequestCreation, e.Message);
        }

        using (upstream)
        {
            using var headersTimeout = CancellationTokenSource.CreateLinkedTokenSource(clientAborted);
            var timeout = TimeSpan.FromSeconds(_options.ResponseHeadersTimeout);
            if (content is StreamedBodyContent)
            {
                // An upload's time to headers starts when it has all gone: a slow client is not the engine's delay.
                content.OnCompleted = () => ArmQuietly(headersTimeout, timeout);
            }
            else
            {
                headersTimeout.CancelAfter(timeout);
            }
            try
            {
                var response = await _invoker.SendAsync(upstream, headersTimeout.Token).ConfigureAwait(false);
                return new AttemptResult(response, AttemptError.None);
            }
            catch (Exception e) when (Find<ClientBodyException>(e) is { } body)
            {
                return new AttemptResult(null, AttemptError.ClientBody, body.Message);
            }
            catch (Exception e) when (Find<EngineStalledException>(e) is { } stalled)
            {
                return new AttemptResult(null, AttemptError.ResponseHeadersTimeout, stalled.Message);
            }
            catch (OperationCanceledException) when (clientAborted.IsCancellationRequested)
            {
                return new AttemptResult(null, AttemptError.Canceled);
            }
            catch (OperationCanceledException)
            {
                return new AttemptResult(null, AttemptError.ResponseHeadersTimeout, $"no response headers within {_options.ResponseHeadersTimeout} s");
            }
            catch (HttpRequestException e)
            {
                var error = Classify(e);
                if (error == AttemptError.ResetBeforeHeaders && content is { Started: true, Completed: false })
                {
                    error = AttemptError.BodyNotAccepted;
                }
                return new AttemptResult(null, error, e.InnerException is { } inner ? $"{e.Message} {inner.Message}" : e.Message);
            }
            catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
            {
                return new AttemptResult(null, AttemptError.RequestCreation, e.Message);
            }
        }
    }

    private static void ArmQuietly(CancellationTokenSource timer, TimeSpan timeout)
    {
        try
        {
            timer.CancelAfter(timeout);
        }
        catch (ObjectDisposedException)
        {
            // The attempt already ended.
        }
    }

    /// <summary>
    /// Engine-side only when the failure is the connection's: opening it, or the engine breaking it. What fails before
    /// any I/O (SocketsHttpHandler's checks of the request, reported as <see cref="HttpRequestError.Unknown"/> with no
    /// I/O cause) is the request's problem.
    /// </summary>
    public static AttemptError Classify(HttpRequestException e) => e.HttpRequestError switch
    {
        HttpRequestError.NameResolutionError or HttpRequestError.ConnectionError or HttpRequestError.SecureConnectionError
            or HttpRequestError.ProxyTunnelError => AttemptError.ConnectFailure,
        HttpRequestError.ResponseEnded or HttpRequestError.InvalidResponse or HttpRequestError.HttpProtocolError
            or HttpRequestError.VersionNegotiationError => AttemptError.ResetBeforeHeaders,
        _ when Find<IOException>(e) is not null || Find<SocketException>(e) is not null => AttemptError.ResetBeforeHeaders,
        _ => AttemptError.RequestCreation,
    };

    private static T? Find<T>(Exception? e) where T : Exception
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is T found)
            {
                return found;
            }
        }
        return null;
    }

    public void Dispose() => _invoker.Dispose();
}
