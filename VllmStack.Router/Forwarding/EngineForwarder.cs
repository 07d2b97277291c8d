using System.Net;
using VllmStack.Router.Configuration;

namespace VllmStack.Router.Forwarding;

/// <summary>How one attempt at an engine ended before anything reached the client.</summary>
public enum AttemptOutcome
{
    /// <summary>Response headers arrived (any status); the response is to be relayed or, for a 5xx, maybe retried.</summary>
    Response,

    /// <summary>The engine could not be reached or dropped the connection before answering: try another.</summary>
    Unreachable,

    /// <summary>No response headers within the timeout.</summary>
    TimedOut,
}

/// <summary>
/// Sends requests to engines over pooled keep-alive connections. The request body is the buffered original,
/// so an attempt can be repeated on another engine; the response is returned as soon as its headers arrive,
/// its body still streaming.
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
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
            // Re-resolve DNS now and then: engine Services and pods move.
            PooledConnectionLifetime = TimeSpan.FromMinutes(10),
            MaxConnectionsPerServer = int.MaxValue,
            AutomaticDecompression = DecompressionMethods.None,
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
        }, disposeHandler: true);
    }

    public async Task<(AttemptOutcome Outcome, HttpResponseMessage? Response, string? Error)> SendAsync(
        HttpRequest client, Uri engine, ReadOnlyMemory<byte> body, string requestId, CancellationToken clientAborted)
    {
        var target = new Uri(engine, client.Path.Value!.TrimStart('/') + client.QueryString.Value);
        using var upstream = new HttpRequestMessage(new HttpMethod(client.Method), target)
        {
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        if (!body.IsEmpty || client.ContentLength is not null)
        {
            upstream.Content = new ReadOnlyMemoryContent(body);
        }
        ProxyHeaders.CopyToUpstream(client.Headers, upstream, requestId, _options.EngineApiKey);

        using var headersTimeout = CancellationTokenSource.CreateLinkedTokenSource(clientAborted);
        headersTimeout.CancelAfter(TimeSpan.FromSeconds(_options.ResponseHeadersTimeout));
        try
        {
            var response = await _invoker.SendAsync(upstream, headersTimeout.Token).ConfigureAwait(false);
            return (AttemptOutcome.Response, response, null);
        }
        catch (HttpRequestException e)
        {
            return (AttemptOutcome.Unreachable, null, e.Message);
        }
        catch (OperationCanceledException) when (!clientAborted.IsCancellationRequested)
        {
            return (AttemptOutcome.TimedOut, null, $"no response headers within {_options.ResponseHeadersTimeout} s");
        }
    }

    public void Dispose() => _invoker.Dispose();
}
