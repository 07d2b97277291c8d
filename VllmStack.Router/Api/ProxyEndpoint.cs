using System.Diagnostics;
using VllmStack.Router.Admission;
using VllmStack.Router.Configuration;
using VllmStack.Router.Engines;
using VllmStack.Router.Forwarding;
using VllmStack.Router.Forwarding.Migration;
using VllmStack.Router.Health;
using VllmStack.Router.Lora;
using VllmStack.Router.Routing;
using VllmStack.Router.Stats;

namespace VllmStack.Router.Api;

/// <summary>
/// The forwarded vLLM routes (<see cref="ForwardedRoutes"/>): read and check the request, route on its model (and
/// session key or prompt), send it to an engine, try another engine only after an engine-side failure before anything
/// reached the client, then relay the response as it arrives. A request's own problems are answered here with a 4xx
/// and never count against an engine.
/// </summary>
public sealed class ProxyEndpoint(
    EngineRegistry registry, RoutingPolicyHolder policies, EngineForwarder forwarder, OutlierDetector outliers,
    RouterOptions options, RouterMetrics metrics, ModelDemand demand, AdmissionGate admission, LoraCatalog loraCatalog, LoraAdapterManager loras)
{
    public static void Map(IEndpointRouteBuilder app)
    {
        foreach (var route in ForwardedRoutes.All)
        {
            app.MapPost(route.Path, context => context.RequestServices.GetRequiredService<ProxyEndpoint>().HandleAsync(context, route));
        }
    }

    public async Task HandleAsync(HttpContext context, ForwardedRoute route)
    {
        var started = Stopwatch.GetTimestamp();
        var requestId = RequestId(context);
        context.Response.Headers[ProxyHeaders.RequestId] = requestId;
        ClientRequest request;
        try
        {
            request = route.Body == RequestBodyKind.Json
                ? await JsonRequestReader.ReadAsync(context.Request, options.MaxRequestBodyBytes, options.SessionKey, policies.NeedsPrompt, context.RequestAborted)
                : await MultipartRequestReader.ReadAsync(context.Request, options.MaxRequestBodyBytes, options.MaxUploadBodyBytes, context.RequestAborted);
        }
        catch (ClientRequestException e)
        {
            await Reject(context, e.Status, e.Reason, e.Message, e.Param);
            return;
        }
        using (request)
        {
            await RouteAsync(context, route, request, requestId, started);
        }
    }

    private async Task RouteAsync(HttpContext context, ForwardedRoute route, ClientRequest request, string requestId, long started)
    {
        var aborted = context.RequestAborted;
        var inspected = request.Inspected;
        var model = inspected.Model ?? SoleModel();
        if (model is null)
        {
            await Reject(context, 400, "bad_request", "'model' is required: this router serves several models.", "model");
            return;
        }
        // An adapter of the catalogue runs on its base model's engines, wherever the manager loads it (Lora/).
        // A catalogue entry named like a base model an engine serves (a hand edit; the admin API refuses it) does not take
        // that model's requests over.
        var adapter = loraCatalog.TryGet(model, out var known) && !registry.Engines.Any(e => e.ModelInfos.Any(m => m.Id == model && m.Parent is null))
            ? known : null;
        var baseModel = adapter?.BaseModel ?? model;
        var serving = registry.Engines.Where(e => e.Serves(baseModel)).ToList();
        if (serving.Count == 0)
        {
            await RejectUnservedAsync(context, baseModel, adapter);
            return;
        }
        demand.Served(baseModel);
        if (context.Request.Headers.TryGetValue(options.Admission.PriorityHeader, out var priority)
            && !int.TryParse(priority.ToString(), System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out _))
        {
            await Reject(context, 400, "bad_request", $"The {options.Admission.PriorityHeader} header must be a whole number (lower is served first).");
            return;
        }
        // Admission control (Admission/): wait for room on the model's engines, or 429.
        var (lease, rejection) = await admission.AdmitAsync(baseModel, context, request, aborted);
        if (rejection is not null)
        {
            metrics.Rejected(rejection.Reason);
            await ErrorResponses.WriteRateLimitAsync(context, rejection.Type, rejection.Message, rejection.RetryAfter);
            return;
        }
        if (lease is null)
        {
            return; // the client left while queued
        }
        using var admitted = lease;
        var session = context.Request.Headers.TryGetValue(options.SessionKey, out var header) && header.ToString() is { Length: > 0 } key ? key : inspected.SessionKey;
        var routing = new RoutingRequest(model, session, inspected.PromptText, requestId, request.JsonBody);
        if (adapter is not null)
        {
            if (await PlaceAdapterAsync(context, adapter, routing) is not { } holders)
            {
                return;
            }
            serving = holders;
        }
        var tried = new HashSet<int>();
        string? lastError = null;
        // Streaming chat/completions may be continued at another engine if theirs fails mid-stream (Router:Migration).
        var generation = options.Migration.Enabled && request.IsBuffered ? RequestMigration.RouteOf(route) : null;
        // Only a stream can be continued: no second pass over the body of any other request.
        var assessment = generation is { } kind0 && inspected.Stream ? ContinuationBuilder.Assess(request.JsonBody.Span, kind0) : null;
        using var migration = assessment is { Streaming: true, NotContinuable: null }
            ? new RequestMigration(context, model, session, requestId, serving, tried, policies, forwarder, outliers, options, metrics)
            {
                Route = generation!.Value,
                OriginalBody = request.JsonBody,
                Assessment = assessment,
                MaxMigrations = options.Migration.MaxMigrations,
            }
            : null;
        for (var attempt = 1; attempt <= options.Forwarding.MaxAttempts && request.CanResend; attempt++)
        {
            var candidates = outliers.Candidates(serving, tried, DateTimeOffset.UtcNow, out var panic);
            if (candidates.Count == 0 && attempt > 1 && adapter is not null)
            {
                // Every holder of the adapter failed (an engine died with it loaded): place it among the engines not tried yet.
                if (await PlaceAdapterAsync(context, adapter, routing, tried) is not { } others)
                {
                    return;
                }
                serving = others;
                candidates = outliers.Candidates(serving, tried, DateTimeOffset.UtcNow, out panic);
            }
            if (candidates.Count == 0)
            {
                if (attempt == 1)
                {
                    demand.RecordUnserved(model);
                    await Reject(context, 503, "no_healthy_engine", $"No healthy engine serves `{model}` right now.",
                        retryAfter: TimeSpan.FromSeconds(options.HealthProbeInterval));
                    return;
                }
                break;
            }
            if (panic)
            {
                metrics.PanicRouted();
            }
            var engine = await policies.Current.ChooseAsync(routing, candidates, aborted);
            tried.Add(engine.Id);
            engine.BeginRequest();
            if (adapter is not null)
            {
                loras.Started(engine, adapter.Name);
            }
            var engineFailed = false;
            try
            {
                engine.Stats.Arrived();
                metrics.Incoming(engine);
                var routed = Stopwatch.GetTimestamp();
                var thisAttempt = attempt;
                migration?.Begin(engine);
                var result = await forwarder.ForwardAsync(context, engine.Url, request, requestId, status =>
                    thisAttempt < options.Forwarding.MaxAttempts && request.CanResend
                    && ((status is 502 or 503 or 504 && outliers.Candidates(serving, tried, DateTimeOffset.UtcNow, out _).Count > 0)
                        // The engine no longer has the adapter (restarted, or another router unloaded it): load it again.
                        || (status == 404 && adapter is not null)), migration);
                switch (result.Error)
                {
                    case AttemptError.Canceled:
                        return;
                    case AttemptError.RequestCreation:
                        // Nothing reached the engine that it could be blamed for.
                        await Reject(context, 400, "request_not_forwardable", $"The request could not be forwarded as sent: {result.Detail}");
                        return;
                    case AttemptError.ClientBody:
                        if (!aborted.IsCancellationRequested)
                        {
                            var tooLarge = request.LastBody?.ClientFailure?.TooLarge == true;
                            await Reject(context, tooLarge ? 413 : 400, tooLarge ? "body_too_large" : "bad_request", result.Detail!);
                        }
                        return;
                    case AttemptError.BodyNotAccepted:
                        // The engine closed while the body was still going out: it may have answered early, refusing the
                        // request (too large, too many headers), or died. Not held against it, not sent elsewhere.
                        await Reject(context, 502, "body_not_accepted",
                            $"The engine closed the connection before taking the whole request body; it may have refused the request ({result.Detail}).");
                        return;
                    case AttemptError.ResponseNotRelayable:
                        await Reject(context, 502, "response_not_relayable", $"The engine's response headers could not be relayed ({result.Detail}).");
                        return;
                    case AttemptError.ResponseHeadersTimeout:
                        engineFailed = true;
                        outliers.Failed(engine, model, EngineFailureKind.ResponseHeadersTimeout, result.Detail!);
                        await Reject(context, 504, "engine_timeout", $"The engine did not answer in time ({result.Detail}).");
                        return;
                    case AttemptError.ConnectFailure or AttemptError.ResetBeforeHeaders:
                        engineFailed = true;
                        var kind = result.Error == AttemptError.ConnectFailure ? EngineFailureKind.ConnectFailure : EngineFailureKind.ResetBeforeHeaders;
                        outliers.Failed(engine, model, kind, result.Detail!);
                        metrics.Retried(engine, kind.Reason());
                        lastError = $"{engine.Name}: {result.Detail}";
                        continue;
                }
                var status = result.Status;
                if (status == 404 && result.HeldBack && adapter is not null)
                {
                    // Not the engine's failure: it lost the adapter since its model list was read. Placed afresh (loaded
                    // again, here or elsewhere), the request gets another attempt.
                    outliers.Answered(engine);
                    engine.RemoveModel(adapter.Name);
                    metrics.Retried(engine, "lora_adapter_missing");
                    tried.Remove(engine.Id);
                    if (await PlaceAdapterAsync(context, adapter, routing) is not { } holders)
                    {
                        return;
                    }
                    serving = holders;
                    lastError = $"{engine.Name}: adapter `{adapter.Name}` not loaded";
                    continue;
                }
                if (status is 502 or 503 or 504)
                {
                    engineFailed = true;
                    outliers.Failed(engine, model, EngineFailureKind.GatewayStatus, $"status {status}");
                    if (result.HeldBack)
                    {
                        metrics.Retried(engine, $"status_{status}");
                        lastError = $"{engine.Name}: status {status}";
                        continue;
                    }
                }
                else if (status >= 500)
                {
                    // Relayed as the engine wrote it and not retried: it may be the request's fault. A streak of them is the engine's.
                    outliers.Failed(engine, model, EngineFailureKind.ServerErrorStatus, $"status {status}");
                }
                else
                {
                    outliers.Answered(engine);
                }
                metrics.AddedLatency(Stopwatch.GetElapsedTime(started, routed).TotalSeconds + result.RouterSeconds);
                var relayed = result.Relay!;
                if (relayed.EngineFailure is { } failure)
                {
                    engineFailed = true;
                    outliers.Failed(engine, model, failure, relayed.Detail!);
                    metrics.Rejected("engine_failed_mid_response");
                    if (assessment is { Streaming: true, NotContinuable: not null })
                    {
                        metrics.Migration(failure.Reason(), "not_continuable");
                    }
                    return;
                }
                if (relayed.MigrationFailed)
                {
                    // The failures were held against their engines as they happened; the stream ended with the error frame.
                    metrics.Rejected("engine_failed_mid_response");
                    return;
                }
                if (relayed.Migrations > 0 || relayed.FailureAccounted)
                {
                    // The first engine failed (accounted then); a continuation's engine had the rest of the stream, or only
                    // the stream's end was missing and the router wrote it.
                    return;
                }
                if (!relayed.ClientLeft)
                {
                    Completed(engine, started, relayed);
                }
                return;
            }
            finally
            {
                if (engineFailed)
                {
                    engine.Stats.Failed();
                }
                if (migration?.FirstEngineReleased != true)
                {
                    engine.EndRequest();
                }
                if (adapter is not null)
                {
                    loras.Finished(engine, adapter.Name);
                }
            }
        }
        await Reject(context, 502, "engines_unreachable", request.CanResend
            ? $"No engine serving `{model}` could take the request ({lastError})."
            : $"The engine failed while the upload was being sent, and an upload cannot be sent twice ({lastError}).");
    }

    /// <summary>
    /// The engines holding <paramref name="adapter"/>, loading it first where needed (<see cref="LoraAdapterManager"/>); or null once
    /// the client has been answered (503: no healthy engine of its base model, or the load failed — no engine is blamed) or has left.
    /// </summary>
    private async Task<List<Engine>?> PlaceAdapterAsync(HttpContext context, LoraAdapter adapter, RoutingRequest routing, IReadOnlySet<int>? excluded = null)
    {
        var aborted = context.RequestAborted;
        var routable = outliers.Candidates(registry.Engines.Where(e => e.Serves(adapter.BaseModel)).ToList(), excluded ?? new HashSet<int>(), DateTimeOffset.UtcNow, out _);
        if (routable.Count == 0 && excluded is not null)
        {
            return []; // every engine of the base model was tried: the caller answers with what went wrong there
        }
        if (routable.Count == 0)
        {
            demand.RecordUnserved(adapter.BaseModel);
            await Reject(context, 503, "no_healthy_engine", $"No healthy engine serves `{adapter.BaseModel}`, the base model of `{adapter.Name}`, right now.",
                retryAfter: TimeSpan.FromSeconds(options.HealthProbeInterval));
            return null;
        }
        var placement = await loras.PrepareAsync(adapter, routable, candidates => policies.Current.ChooseAsync(routing, candidates, aborted), aborted);
        if (aborted.IsCancellationRequested)
        {
            return null;
        }
        if (placement.Error is { } loadError)
        {
            await Reject(context, 503, loadError.Code, loadError.Message, "model", loadError.RetryAfter, code: loadError.Code);
            return null;
        }
        return [.. placement.Engines];
    }

    private void Completed(Engine engine, long started, RelayResult relayed)
    {
        var latency = Stopwatch.GetElapsedTime(started).TotalSeconds;
        engine.Stats.Completed(latency,
            relayed.FirstByte == 0 ? null : Stopwatch.GetElapsedTime(started, relayed.FirstByte).TotalSeconds,
            relayed.Chunks > 1 ? Stopwatch.GetElapsedTime(relayed.FirstByte, relayed.LastByte).TotalSeconds / (relayed.Chunks - 1) : null,
            relayed.Chunks - 1);
        metrics.Completed(engine, latency);
    }

    /// <summary>
    /// No engine serves the model (for a catalogued adapter: its base model): starting (503), scaled to zero (503, counted as
    /// demand) or unknown (404).
    /// </summary>
    private async Task RejectUnservedAsync(HttpContext context, string model, LoraAdapter? adapter = null)
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
            await Reject(context, 404, "model_not_found", adapter is null
                ? $"The model `{model}` does not exist."
                : $"The LoRA adapter `{adapter.Name}` needs the base model `{model}`, which no engine serves.", "model");
        }
    }

    private async Task Reject(HttpContext context, int status, string reason, string message, string? param = null, TimeSpan? retryAfter = null, string? code = null)
    {
        metrics.Rejected(reason);
        await ErrorResponses.WriteAsync(context, status, message, param, retryAfter, code: code);
    }

    /// <summary>When every engine serves the same single base model, a request may leave out <c>model</c>, as with vLLM.</summary>
    private string? SoleModel()
    {
        var models = registry.Engines.SelectMany(e => e.ModelInfos).Where(m => m.Parent is null).Select(m => m.Id).Distinct().Take(2).ToList();
        return models.Count == 1 ? models[0] : null;
    }

    private static string RequestId(HttpContext context) =>
        context.Request.Headers.TryGetValue(ProxyHeaders.RequestId, out var given) && given.ToString() is { Length: > 0 and <= 128 } id && id.All(c => c > ' ' && c < 127)
            ? id
            : Guid.NewGuid().ToString("N"); // a UUID4 in hex, as vLLM names its requests
}
