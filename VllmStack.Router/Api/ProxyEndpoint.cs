using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using VllmStack.Router.Configuration;
using VllmStack.Router.Engines;
using VllmStack.Router.Forwarding;
using VllmStack.Router.Routing;
using VllmStack.Router.Stats;

namespace VllmStack.Router.Api;

/// <summary>
/// The forwarded OpenAI routes: read the body once, route on its model (and session key or prompt), send it to an
/// engine, fail over before the first byte reaches the client, then relay the response as it arrives.
/// </summary>
public sealed class ProxyEndpoint(
    EngineRegistry registry, RoutingPolicyHolder policies, EngineForwarder forwarder, RouterOptions options, RouterMetrics metrics, ModelDemand demand,
    ILogger<ProxyEndpoint> logger)
{
    public static readonly string[] Paths =
        ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank", "/v1/score", "/v1/responses", "/tokenize", "/detokenize"];

    private const int RelayBufferSize = 16 * 1024;

    public static void Map(IEndpointRouteBuilder app)
    {
        foreach (var path in Paths)
        {
            app.MapPost(path, context => context.RequestServices.GetRequiredService<ProxyEndpoint>().HandleAsync(context));
        }
    }

    public async Task HandleAsync(HttpContext context)
    {
        var started = Stopwatch.GetTimestamp();
        var aborted = context.RequestAborted;
        var requestId = RequestId(context);
        context.Response.Headers[ProxyHeaders.RequestId] = requestId;

        var declared = context.Request.ContentLength;
        if (declared > options.MaxRequestBodyBytes)
        {
            await Reject(context, 413, "body_too_large", $"The request body ({declared} bytes) exceeds the limit of {options.MaxRequestBodyBytes} bytes.");
            return;
        }
        byte[]? buffer;
        int length;
        try
        {
            (buffer, length) = await ReadBodyAsync(context.Request, aborted);
        }
        catch (BadHttpRequestException e)
        {
            // Kestrel's own limits (size, rate, malformed chunking) still get an OpenAI-style answer.
            await Reject(context, e.StatusCode, "bad_request", e.Message);
            return;
        }
        if (buffer is null)
        {
            await Reject(context, 413, "body_too_large", $"The request body exceeds the limit of {options.MaxRequestBodyBytes} bytes.");
            return;
        }
        try
        {
            await RouteAsync(context, buffer.AsMemory(0, length), requestId, started);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task RouteAsync(HttpContext context, ReadOnlyMemory<byte> body, string requestId, long started)
    {
        var aborted = context.RequestAborted;
        InspectedRequest inspected;
        try
        {
            inspected = RequestInspector.Inspect(body.Span, options.SessionKey, policies.NeedsPrompt);
        }
        catch (JsonException e)
        {
            await Reject(context, 400, "bad_request", $"The request body is not valid JSON: {e.Message}");
            return;
        }
        var model = inspected.Model ?? SoleModel();
        if (model is null)
        {
            await Reject(context, 400, "bad_request", "'model' is required: this router serves several models.", "model");
            return;
        }
        var serving = registry.Engines.Where(e => e.Serves(model)).ToList();
        if (serving.Count == 0)
        {
            if (registry.Engines.Any(e => !e.ModelsKnown))
            {
                demand.RecordUnserved(model);
                await Reject(context, 503, "engines_starting", $"No engine has reported model `{model}` yet; engines are starting.", retryAfter: TimeSpan.FromSeconds(2));
            }
            else if (demand.IsKnown(model))
            {
                demand.RecordUnserved(model);
                await Reject(context, 503, "scaled_to_zero", $"No engine runs `{model}` right now (scaled to zero); one is being started, retry shortly.",
                    retryAfter: TimeSpan.FromSeconds(options.ScaledToZeroRetryAfter));
            }
            else
            {
                await Reject(context, 404, "model_not_found", $"The model `{model}` does not exist.", "model");
            }
            return;
        }
        demand.Served(model);
        var session = context.Request.Headers.TryGetValue(options.SessionKey, out var header) && header.ToString() is { Length: > 0 } key ? key : inspected.SessionKey;
        var routing = new RoutingRequest(model, session, inspected.PromptText, requestId, body);
        var tried = new HashSet<int>();
        string? lastError = null;
        for (var attempt = 1; attempt <= options.Forwarding.MaxAttempts; attempt++)
        {
            var now = DateTimeOffset.UtcNow;
            var candidates = serving.Where(e => e.IsRoutable(now) && !tried.Contains(e.Id)).ToList();
            if (candidates.Count == 0)
            {
                if (attempt == 1)
                {
                    var soonest = serving.Select(e => e.EjectedUntil - now).Where(t => t > TimeSpan.Zero).DefaultIfEmpty(TimeSpan.FromSeconds(options.HealthProbeInterval)).Min();
                    demand.RecordUnserved(model);
                    await Reject(context, 503, "no_healthy_engine", $"No healthy engine serves `{model}` right now.", retryAfter: soonest);
                    return;
                }
                break;
            }
            var engine = await policies.Current.ChooseAsync(routing, candidates, aborted);
            tried.Add(engine.Id);
            engine.BeginRequest();
            var ended = false;
            try
            {
                engine.Stats.Arrived();
                metrics.Incoming(engine);
                var routed = Stopwatch.GetTimestamp();
                var (outcome, response, error) = await forwarder.SendAsync(context.Request, engine.Url, body, requestId, aborted);
                if (outcome == AttemptOutcome.Unreachable)
                {
                    Failed(engine, "unreachable", error);
                    lastError = $"{engine.Name}: {error}";
                    continue;
                }
                if (outcome == AttemptOutcome.TimedOut)
                {
                    Failed(engine, "timeout", error);
                    await Reject(context, 504, "engine_timeout", $"The engine did not answer in time ({error}).");
                    return;
                }
                using (response)
                {
                    var status = (int)response!.StatusCode;
                    if (status >= 500 && attempt < options.Forwarding.MaxAttempts && serving.Any(e => e.IsRoutable(now) && !tried.Contains(e.Id)))
                    {
                        Failed(engine, $"status_{status}", $"status {status}");
                        lastError = $"{engine.Name}: status {status}";
                        continue;
                    }
                    await RelayAsync(context, engine, response, started, routed);
                    ended = true;
                    return;
                }
            }
            catch (OperationCanceledException) when (aborted.IsCancellationRequested)
            {
                // The client left while the engine was still working: not the engine's failure.
                ended = true;
                return;
            }
            finally
            {
                if (!ended)
                {
                    engine.Stats.Failed();
                }
                engine.EndRequest();
            }
        }
        await Reject(context, 502, "engines_unreachable", $"No engine serving `{model}` could be reached ({lastError}).");
    }

    private void Failed(Engine engine, string reason, string? detail)
    {
        var ejected = engine.RecordFailure(DateTimeOffset.UtcNow,
            TimeSpan.FromSeconds(options.Forwarding.EjectionBase), TimeSpan.FromSeconds(options.Forwarding.EjectionMax));
        metrics.Retried(engine, reason);
        logger.LogWarning("Engine {Engine} failed ({Reason}: {Detail}); ejected for {Seconds:F1} s", engine.Name, reason, detail, ejected.TotalSeconds);
    }

    /// <summary>Relays status, headers and body as they arrive; server-sent events are flushed chunk by chunk.</summary>
    private async Task RelayAsync(HttpContext context, Engine engine, HttpResponseMessage response, long started, long routed)
    {
        var aborted = context.RequestAborted;
        var status = (int)response.StatusCode;
        if (status >= 500)
        {
            engine.RecordFailure(DateTimeOffset.UtcNow, TimeSpan.FromSeconds(options.Forwarding.EjectionBase), TimeSpan.FromSeconds(options.Forwarding.EjectionMax));
        }
        else
        {
            engine.RecordSuccess();
        }
        var headersAt = Stopwatch.GetTimestamp();
        context.Response.StatusCode = status;
        ProxyHeaders.CopyToClient(response, context.Response);
        var streaming = response.Content.Headers.ContentType?.MediaType == "text/event-stream";
        if (streaming)
        {
            context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            // Headers go out now: the client learns the request is accepted before the first token.
            await context.Response.StartAsync(aborted);
        }
        metrics.AddedLatency(Stopwatch.GetElapsedTime(started, routed).TotalSeconds + Stopwatch.GetElapsedTime(headersAt).TotalSeconds);

        var buffer = ArrayPool<byte>.Shared.Rent(RelayBufferSize);
        long first = 0;
        long last = 0;
        var chunks = 0;
        try
        {
            await using var upstream = await response.Content.ReadAsStreamAsync(aborted);
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(aborted);
            var idleTimeout = TimeSpan.FromSeconds(options.Forwarding.IdleTimeout);
            while (true)
            {
                idle.CancelAfter(idleTimeout);
                int read;
                try
                {
                    read = await upstream.ReadAsync(buffer, idle.Token);
                }
                catch (Exception e) when (!aborted.IsCancellationRequested && e is IOException or HttpRequestException or OperationCanceledException)
                {
                    await EngineFailedMidStreamAsync(context, engine, streaming, e is OperationCanceledException ? "idle timeout" : e.Message);
                    return;
                }
                if (read == 0)
                {
                    break;
                }
                var now = Stopwatch.GetTimestamp();
                if (first == 0)
                {
                    first = now;
                }
                last = now;
                chunks++;
                await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), aborted);
                if (streaming)
                {
                    await context.Response.Body.FlushAsync(aborted);
                }
            }
            var latency = Stopwatch.GetElapsedTime(started).TotalSeconds;
            engine.Stats.Completed(latency,
                first == 0 ? null : Stopwatch.GetElapsedTime(started, first).TotalSeconds,
                chunks > 1 ? Stopwatch.GetElapsedTime(first, last).TotalSeconds / (chunks - 1) : null,
                chunks - 1);
            metrics.Completed(engine, latency);
        }
        catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // The client left: disposing the upstream response closes the engine connection, which aborts the request there.
            logger.LogDebug("Client left request {RequestId} to {Engine}", context.Response.Headers[ProxyHeaders.RequestId].ToString(), engine.Name);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Bytes already reached the client, so there is no retry: a stream ends with an error frame and [DONE]
    /// (clients stop cleanly instead of hanging); any other body is cut, so the client cannot take it as whole.
    /// </summary>
    private async Task EngineFailedMidStreamAsync(HttpContext context, Engine engine, bool streaming, string reason)
    {
        engine.RecordFailure(DateTimeOffset.UtcNow, TimeSpan.FromSeconds(options.Forwarding.EjectionBase), TimeSpan.FromSeconds(options.Forwarding.EjectionMax));
        metrics.Rejected("engine_failed_mid_stream");
        logger.LogWarning("Engine {Engine} failed mid-response: {Reason}", engine.Name, reason);
        if (!streaming)
        {
            context.Abort();
            return;
        }
        var frame = ErrorResponses.Body(502, $"The engine failed while streaming the response: {reason}");
        var body = context.Response.Body;
        try
        {
            await body.WriteAsync("data: "u8.ToArray(), context.RequestAborted);
            await body.WriteAsync(frame, context.RequestAborted);
            await body.WriteAsync("\n\ndata: [DONE]\n\n"u8.ToArray(), context.RequestAborted);
            await body.FlushAsync(context.RequestAborted);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The client is gone too.
        }
    }

    private async Task Reject(HttpContext context, int status, string reason, string message, string? param = null, TimeSpan? retryAfter = null)
    {
        metrics.Rejected(reason);
        await ErrorResponses.WriteAsync(context, status, message, param, retryAfter);
    }

    /// <summary>When every engine serves the same single base model, a request may leave out <c>model</c>, as with vLLM.</summary>
    private string? SoleModel()
    {
        var models = registry.Engines.SelectMany(e => e.ModelInfos).Where(m => m.Parent is null).Select(m => m.Id).Distinct().Take(2).ToList();
        return models.Count == 1 ? models[0] : null;
    }

    /// <summary>Reads the whole body into a pooled buffer (routing needs it, a retry resends it); null when over the limit.</summary>
    private async Task<(byte[]? Buffer, int Length)> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var limit = options.MaxRequestBodyBytes;
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(limit + 1, Math.Max(4096, request.ContentLength ?? 16 * 1024)));
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (length > limit)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    return (null, 0);
                }
                var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(limit + 1, (long)buffer.Length * 2));
                buffer.AsSpan(0, length).CopyTo(bigger);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = bigger;
            }
            var read = await request.Body.ReadAsync(buffer.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                break;
            }
            length += read;
        }
        if (length > limit)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return (null, 0);
        }
        return (buffer, length);
    }

    private static string RequestId(HttpContext context) =>
        context.Request.Headers.TryGetValue(ProxyHeaders.RequestId, out var given) && given.ToString() is { Length: > 0 and <= 128 } id && id.All(c => c > ' ' && c < 127)
            ? id
            : Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
}
