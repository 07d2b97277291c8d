using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using VllmStack.Router.Configuration;
using VllmStack.Router.Stats;
using Yarp.ReverseProxy.Forwarder;

namespace VllmStack.Router.Forwarding;

/// <summary>How one attempt at an engine ended.</summary>
public enum AttemptError
{
    /// <summary>The engine answered (any status); its response was relayed, or held back for another engine.</summary>
    None,

    /// <summary>The connection could not be opened: engine-side, and the request never left, so it may go elsewhere.</summary>
    ConnectFailure,

    /// <summary>The connection broke before response headers: engine-side.</summary>
    ResetBeforeHeaders,

    /// <summary>No response headers within <c>Forwarding:ResponseHeadersTimeout</c>, or the engine stopped taking the body: engine-side.</summary>
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

    /// <summary>The engine's response headers could not be relayed to the client (YARP's <c>ResponseHeaders</c>).</summary>
    ResponseNotRelayable,

    /// <summary>The client left.</summary>
    Canceled,
}

/// <summary>The end of one attempt.</summary>
/// <param name="Status">The engine's status when it answered; 0 otherwise.</param>
/// <param name="HeldBack">The engine's 502/503/504 was not relayed, so the request may go to another engine.</param>
/// <param name="Relay">How the body went to the client, when the response was relayed.</param>
/// <param name="RouterSeconds">Seconds the router spent on the response headers once they had come.</param>
public sealed record AttemptResult(AttemptError Error, string? Detail = null, int Status = 0, bool HeldBack = false, RelayResult? Relay = null, double RouterSeconds = 0);

/// <summary>
/// Sends a request to an engine with YARP's <see cref="IHttpForwarder"/> over pooled keep-alive connections, and tells
/// engine-side failures from the request's own (YARP's <see cref="ForwarderError"/> and the exception behind it): the
/// router judges an engine only by the first kind. The engine is the router's choice and a retry the router's
/// decision, so YARP forwards exactly one attempt per call. Header values travel byte for byte as clients sent them
/// (UTF-8 or Latin-1 obs-text, which vLLM's uvicorn accepts), so an unusual header never stops a request.
/// </summary>
public sealed class EngineForwarder : IDisposable
{
    private readonly IHttpForwarder _forwarder;
    private readonly HttpMessageInvoker _invoker;
    private readonly ForwardingOptions _options;
    private readonly RouterMetrics _metrics;
    private readonly ForwarderRequestConfig _requestConfig;
    private readonly TimeSpan _responseHeadersTimeout;
    private readonly TimeSpan _bodyStallTimeout;

    public EngineForwarder(IHttpForwarder forwarder, RouterOptions options, RouterMetrics metrics)
    {
        _forwarder = forwarder;
        _options = options.Forwarding;
        _metrics = metrics;
        _responseHeadersTimeout = TimeSpan.FromSeconds(_options.ResponseHeadersTimeout);
        // An engine that takes none of the body for the idle timeout is as silent as one that sends no body byte.
        _bodyStallTimeout = TimeSpan.FromSeconds(_options.IdleTimeout);
        _invoker = new HttpMessageInvoker(new HeldBodyHandler(new SocketsHttpHandler
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
        }), disposeHandler: true);
        _requestConfig = new ForwarderRequestConfig
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            // The router times each silence of the engine itself (AttemptTimer, EngineResponseBody); YARP's activity timeout
            // is only the outer bound, past the longest of them, so that it never fires first.
            ActivityTimeout = TimeSpan.FromSeconds(Math.Max(_options.ResponseHeadersTimeout, Math.Max(_options.FirstByteTimeout, _options.IdleTimeout)) + 60),
        };
    }

    /// <summary>
    /// Forwards <paramref name="request"/> to <paramref name="engine"/>, relaying the response to the client unless it is a
    /// status for which <paramref name="retryStatus"/> says another attempt should have the request (the router's 502/503/504 held
    /// back for another engine, an adapter's 404 from an engine that lost it).
    /// Never throws for a failed attempt: <see cref="AttemptResult.Error"/> says why.
    /// </summary>
    public async Task<AttemptResult> ForwardAsync(HttpContext context, Uri engine, ClientRequest request, string requestId, Func<int, bool> retryStatus,
        Migration.StreamContinuation? continuation = null)
    {
        var clientAborted = context.RequestAborted;
        using var timer = new AttemptTimer(_responseHeadersTimeout, _bodyStallTimeout);
        var body = request.CreateBody(timer);
        PrepareContext(context, request, body, requestId);
        // Until the body starts (connecting, sending the headers), the whole wait is bounded like the wait for headers.
        timer.AwaitResponseHeaders();
        var transformer = new EngineTransformer(_options, _metrics, timer, body, requestId, retryStatus, continuation);
        var error = await _forwarder.SendAsync(context, engine.AbsoluteUri, _invoker, _requestConfig, transformer, timer.Token).ConfigureAwait(false);
        if (error != ForwarderError.None && !context.Response.HasStarted)
        {
            // YARP clears the response of a failed attempt; the router's answer still carries the request id.
            context.Response.Headers[ProxyHeaders.RequestId] = requestId;
        }
        // YARP disposed the engine's response; what the relay recorded stays on its body.
        var relay = transformer.Content?.Body;
        if (transformer.Content?.Migrating is { } migrating)
        {
            // Engine failures of a followed stream were accounted as they happened; what is left is how the stream ended.
            var first = migrating.First.Result(clientLeft: error != ForwarderError.None) with
            {
                EngineFailure = null, Detail = null, Migrations = migrating.Migrations, MigrationFailed = migrating.EndedInError,
                FailureAccounted = migrating.First.Failure is not null,
            };
            return new AttemptResult(AttemptError.None, Status: transformer.Status, Relay: first, RouterSeconds: transformer.HeadersRelaySeconds);
        }
        if (error == ForwarderError.None)
        {
            return transformer.HeldBack
                ? new AttemptResult(AttemptError.None, $"status {transformer.Status}", transformer.Status, HeldBack: true)
                : new AttemptResult(AttemptError.None, Status: transformer.Status, Relay: relay?.Result(clientLeft: false) ?? new RelayResult(false, null, null, 0, 0, 0),
                    RouterSeconds: transformer.HeadersRelaySeconds);
        }
        var exception = context.GetForwarderErrorFeature()?.Exception;
        var detail = Describe(exception);
        if (transformer.Status != 0)
        {
            // The response was under way: the relay knows whether the engine failed; otherwise the client left.
            if (relay?.Failure is not null)
            {
                return new AttemptResult(AttemptError.None, relay.FailureDetail, transformer.Status, Relay: relay.Result(clientLeft: false), RouterSeconds: transformer.HeadersRelaySeconds);
            }
            return error == ForwarderError.ResponseHeaders
                ? new AttemptResult(AttemptError.ResponseNotRelayable, detail, transformer.Status)
                : new AttemptResult(AttemptError.None, detail, transformer.Status, Relay: relay?.Result(clientLeft: true) ?? new RelayResult(true, null, null, 0, 0, 0),
                    RouterSeconds: transformer.HeadersRelaySeconds);
        }
        if (clientAborted.IsCancellationRequested)
        {
            return new AttemptResult(AttemptError.Canceled);
        }
        if (body.ClientFailure is { } clientFailure)
        {
            return new AttemptResult(AttemptError.ClientBody, clientFailure.Message);
        }
        if (timer.Detail is { } silence)
        {
            return new AttemptResult(AttemptError.ResponseHeadersTimeout, silence);
        }
        var kind = error switch
        {
            ForwarderError.RequestCreation => AttemptError.RequestCreation,
            ForwarderError.RequestTimedOut => AttemptError.ResponseHeadersTimeout,
            ForwarderError.RequestBodyClient => AttemptError.ClientBody,
            ForwarderError.RequestBodyDestination => AttemptError.BodyNotAccepted,
            _ when Find<HttpRequestException>(exception) is { } http => Classify(http),
            _ when exception is not null && (Find<IOException>(exception) is not null || Find<SocketException>(exception) is not null) => AttemptError.ResetBeforeHeaders,
            _ => AttemptError.RequestCreation,
        };
        if (kind == AttemptError.ResetBeforeHeaders && body is { Started: true, Completed: false })
        {
            kind = AttemptError.BodyNotAccepted;
        }
        return new AttemptResult(kind, detail);
    }

    /// <summary>
    /// Points the client's request at this attempt's body. A held body's length is known, so the engine gets a
    /// Content-Length; the response starts over from a clean status (YARP sets one on a failed attempt).
    /// </summary>
    private static void PrepareContext(HttpContext context, ClientRequest request, AttemptBody body, string requestId)
    {
        context.Request.Body = body;
        if (request.IsBuffered)
        {
            context.Request.Headers.TransferEncoding = default;
            context.Request.ContentLength = request.JsonBody.Length;
        }
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.Headers[ProxyHeaders.RequestId] = requestId;
    }

    private static string? Describe(Exception? e) => e switch
    {
        null => null,
        AggregateException aggregate => string.Join(" ", aggregate.InnerExceptions.Select(Describe)),
        { InnerException: { } inner } => $"{e.Message} {inner.Message}",
        _ => e.Message,
    };

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
            if (e is AggregateException { InnerExceptions: var inner } && inner.Select(Find<T>).FirstOrDefault(x => x is not null) is { } nested)
            {
                return nested;
            }
        }
        return null;
    }

    /// <summary>
    /// Sends a stream's continuation (<see cref="Migration.ContinuationBuilder"/>) to <paramref name="engine"/> on the route the
    /// client used, with the client's headers as the first attempt had them. Returns the engine's body when it answered
    /// 200 with an event stream; otherwise the engine-side failure to hold against it (null when the answer was the
    /// request's problem, such as a 400).
    /// </summary>
    public async Task<(EngineResponseBody? Body, Health.EngineFailureKind? Failure, string? Detail)> OpenContinuationAsync(
        HttpContext context, Uri engine, byte[] body, string requestId, CancellationToken clientAborted)
    {
        var target = new Uri(engine, context.Request.Path.Value!.TrimStart('/'));
        using var request = new HttpRequestMessage(HttpMethod.Post, target)
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        ProxyHeaders.CopyToUpstream(context.Request.Headers, request, requestId, _options.EngineApiKey);
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        request.Content.Headers.ContentLength = body.Length;
        using var headersDeadline = CancellationTokenSource.CreateLinkedTokenSource(clientAborted);
        headersDeadline.CancelAfter(_responseHeadersTimeout);
        HttpResponseMessage response;
        try
        {
            response = await _invoker.SendAsync(request, headersDeadline.Token).ConfigureAwait(false);
        }
        catch (HttpRequestException e) when (!clientAborted.IsCancellationRequested)
        {
            return (null, Classify(e) == AttemptError.ConnectFailure ? Health.EngineFailureKind.ConnectFailure : Health.EngineFailureKind.ResetBeforeHeaders, Describe(e));
        }
        catch (OperationCanceledException) when (!clientAborted.IsCancellationRequested)
        {
            return (null, Health.EngineFailureKind.ResponseHeadersTimeout, $"no response headers within {_options.ResponseHeadersTimeout} s");
        }
        var status = (int)response.StatusCode;
        if (status != StatusCodes.Status200OK || response.Content.Headers.ContentType?.MediaType != "text/event-stream")
        {
            response.Dispose();
            Health.EngineFailureKind? failure = status switch
            {
                502 or 503 or 504 => Health.EngineFailureKind.GatewayStatus,
                >= 500 => Health.EngineFailureKind.ServerErrorStatus,
                _ => null,
            };
            return (null, failure, $"status {status}");
        }
        try
        {
            var stream = await response.Content.ReadAsStreamAsync(clientAborted).ConfigureAwait(false);
            return (new EngineResponseBody(stream, streaming: true, _options, _metrics, clientAborted, errorFrame: false, owner: response), null, null);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    public void Dispose() => _invoker.Dispose();
}
