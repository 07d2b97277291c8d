using System.Diagnostics;
using VllmStack.Router.Stats;
using Yarp.ReverseProxy.Forwarder;

namespace VllmStack.Router.Forwarding;

/// <summary>
/// YARP's request and response transforms for one attempt at an engine: the client's end-to-end headers go up with the
/// router's request id, the engine key and trace context (<see cref="ProxyHeaders"/>); the response headers come back
/// through YARP's own copy; a 502/503/504 that may go to another engine is held back instead of relayed; the body is
/// read through an <see cref="EngineResponseBody"/>.
/// </summary>
internal sealed class EngineTransformer(
    ForwardingOptions options, RouterMetrics metrics, AttemptTimer timer, AttemptBody body, string requestId, Func<int, bool> retryStatus,
    Migration.StreamContinuation? continuation = null) : HttpTransformer
{
    /// <summary>The engine's status; 0 when no response headers came.</summary>
    public int Status { get; private set; }

    /// <summary>The engine answered 502/503/504 and the request goes to another engine instead: nothing was relayed.</summary>
    public bool HeldBack { get; private set; }

    /// <summary>Seconds the router spent relaying the response headers once they had come.</summary>
    public double HeadersRelaySeconds { get; private set; }

    public EngineResponseContent? Content { get; private set; }

    public override ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        ProxyHeaders.CopyToUpstream(httpContext.Request.Headers, proxyRequest, requestId, options.EngineApiKey);
        if (httpContext.Request.ContentLength is { } length && proxyRequest.Content is not null)
        {
            proxyRequest.Content.Headers.ContentLength = length;
        }
        if (body.IsHeld)
        {
            proxyRequest.Options.Set(HeldBodyHandler.HeldBody, body);
        }
        return default;
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        timer.Stop();
        if (proxyResponse is null)
        {
            // YARP reports a failed attempt; the router answers (or retries) once SendAsync returns.
            return false;
        }
        var arrived = Stopwatch.GetTimestamp();
        Status = (int)proxyResponse.StatusCode;
        if (retryStatus(Status))
        {
            HeldBack = true;
            httpContext.Response.StatusCode = StatusCodes.Status200OK;
            return false;
        }
        await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
        ProxyHeaders.AfterResponseCopied(httpContext.Response, requestId);
        var streaming = proxyResponse.Content.Headers.ContentType?.MediaType == "text/event-stream";
        var aborted = httpContext.RequestAborted;
        // A stream that may be migrated is followed event by event; every other body is relayed byte for byte.
        var migratable = streaming && Status == StatusCodes.Status200OK && continuation is not null;
        proxyResponse.Content = Content = new EngineResponseContent(proxyResponse.Content,
            engine => new EngineResponseBody(engine, streaming, options, metrics, aborted, errorFrame: !migratable),
            migratable ? continuation : null, metrics);
        if (streaming)
        {
            // Headers go out now: the client learns the request is accepted before the first token. (StartAsync alone only
            // buffers them in Kestrel; the flush puts them on the wire.)
            await httpContext.Response.StartAsync(cancellationToken).ConfigureAwait(false);
            await httpContext.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        HeadersRelaySeconds = Stopwatch.GetElapsedTime(arrived).TotalSeconds;
        return true;
    }
}
