using System.Diagnostics;
using VllmStack.Router.Configuration;
using VllmStack.Router.Engines;
using VllmStack.Router.Forwarding;
using VllmStack.Router.Forwarding.Migration;
using VllmStack.Router.Health;
using VllmStack.Router.Routing;
using VllmStack.Router.Stats;

namespace VllmStack.Router.Api;

/// <summary>
/// One streaming chat/completions request's migration, as the proxy endpoint does it: the failing engine is held to
/// account by outlier detection like any engine-side failure, and a continuation is routed by the current routing
/// policy (kvaware asks the cache server with the continuation's own prompt, so it goes where the prefix is cached)
/// among the model's engines not yet tried, then opened like a first attempt (connect failures and 5xx answers move on
/// to the next engine, up to <c>Forwarding:MaxAttempts</c>).
/// </summary>
internal sealed class RequestMigration(
    HttpContext context, string model, string? session, string requestId, IReadOnlyList<Engine> serving, HashSet<int> tried,
    RoutingPolicyHolder policies, EngineForwarder forwarder, OutlierDetector outliers, RouterOptions options, RouterMetrics metrics)
    : StreamContinuation, IDisposable
{
    private Engine? _current;
    private bool _currentIsContinuation;
    private long _currentStarted;

    /// <summary>The engine the first attempt went to.</summary>
    public void Begin(Engine engine)
    {
        _current = engine;
        _currentIsContinuation = false;
        _currentStarted = Stopwatch.GetTimestamp();
    }

    /// <summary>
    /// The first engine was released when it failed (its in-flight count no longer holds this request, which goes on
    /// elsewhere): the proxy endpoint must not release it again.
    /// </summary>
    public bool FirstEngineReleased { get; private set; }

    public override void CurrentFailed(EngineFailureKind kind, string detail)
    {
        if (_current is not { } engine)
        {
            return;
        }
        outliers.Failed(engine, model, kind, detail);
        engine.Stats.Failed();
        // Released at once: counted on the failed engine until the whole stream ends, the request would read as two
        // in flight (one on an engine that no longer has it), and admission control would see too little room.
        engine.EndRequest();
        FirstEngineReleased |= !_currentIsContinuation;
        _current = null;
    }

    public override void CurrentCompleted()
    {
        if (_current is not { } engine || !_currentIsContinuation)
        {
            return;
        }
        var latency = Stopwatch.GetElapsedTime(_currentStarted).TotalSeconds;
        outliers.Answered(engine);
        engine.Stats.Completed(latency, null, null, 0);
        metrics.Completed(engine, latency);
        engine.EndRequest();
        _current = null;
    }

    public override async Task<EngineResponseBody?> OpenAsync(byte[] body, CancellationToken cancellationToken)
    {
        var prompt = policies.NeedsPrompt ? RequestInspector.Inspect(body, null, wantPrompt: true).PromptText : null;
        var routing = new RoutingRequest(model, session, prompt, requestId, body);
        for (var attempt = 1; attempt <= options.Forwarding.MaxAttempts; attempt++)
        {
            var candidates = outliers.Candidates(serving, tried, DateTimeOffset.UtcNow, out _);
            if (candidates.Count == 0)
            {
                return null;
            }
            var engine = await policies.Current.ChooseAsync(routing, candidates, cancellationToken).ConfigureAwait(false);
            tried.Add(engine.Id);
            engine.BeginRequest();
            engine.Stats.Arrived();
            metrics.Incoming(engine);
            var started = Stopwatch.GetTimestamp();
            EngineResponseBody? stream;
            EngineFailureKind? failure;
            string? detail;
            try
            {
                (stream, failure, detail) = await forwarder.OpenContinuationAsync(context, engine.Url, body, requestId, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // The client left while the continuation was being opened.
                engine.EndRequest();
                throw;
            }
            if (stream is not null)
            {
                _current = engine;
                _currentIsContinuation = true;
                _currentStarted = started;
                return stream;
            }
            engine.EndRequest();
            if (failure is not { } kind)
            {
                // The engine refused the continuation itself (a 4xx): no other engine would take it either.
                metrics.Rejected("continuation_refused");
                return null;
            }
            outliers.Failed(engine, model, kind, detail!);
            engine.Stats.Failed();
            metrics.Retried(engine, kind.Reason());
        }
        return null;
    }

    /// <summary>A continuation's engine still counted as serving (the client left) is released.</summary>
    public void Dispose()
    {
        if (_currentIsContinuation && _current is { } engine)
        {
            engine.EndRequest();
            _current = null;
        }
    }

    /// <summary>The route's generation kind, when it is one a stream can be migrated on.</summary>
    public static GenerationRoute? RouteOf(ForwardedRoute route) => route.Path switch
    {
        "/v1/chat/completions" => GenerationRoute.Chat,
        "/v1/completions" => GenerationRoute.Completions,
        _ => null,
    };
}
