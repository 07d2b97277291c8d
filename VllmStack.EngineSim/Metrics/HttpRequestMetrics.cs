using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace VllmStack.EngineSim.Metrics;

/// <summary>
/// The HTTP metrics of vLLM's OpenAI server, which come from prometheus-fastapi-instrumentator's default set as vLLM's
/// <c>api_server.py</c> installs it: <c>http_requests_total{handler,method,status}</c> (status grouped as <c>2xx</c>),
/// <c>http_request_size_bytes{handler}</c> and <c>http_response_size_bytes{handler}</c> (summaries of the
/// <c>Content-Length</c> values), <c>http_request_duration_highr_seconds</c> (no labels, 21 buckets) and
/// <c>http_request_duration_seconds{handler,method}</c> (0.1, 0.5, 1 s). The handler is the route template, or
/// <c>none</c> for a path no route matches; vLLM's excluded handlers are not counted.
/// </summary>
public sealed class HttpRequestMetrics : IDisposable
{
    public const string MeterName = "VllmStack.EngineSim.Http";

    /// <summary>
    /// vLLM's excluded handlers. The instrumentator searches each as a regular expression anywhere in the handler; these
    /// are plain paths, so a substring test is the same, and <c>/v1/load_lora_adapter</c> is left out by <c>/load</c>, as in vLLM.
    /// </summary>
    private static readonly string[] ExcludedHandlers = ["/metrics", "/health", "/load", "/ping", "/version", "/server_info"];

    private static readonly double[] HighResolutionBuckets = [0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10, 30, 60];
    private static readonly double[] LowResolutionBuckets = [0.1, 0.5, 1];
    private static readonly string[] StatusGroups = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "7xx", "8xx", "9xx"];

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _requests;
    private readonly Histogram<long> _requestSize;
    private readonly Histogram<long> _responseSize;
    private readonly Histogram<double> _durationHighResolution;
    private readonly Histogram<double> _duration;

    public HttpRequestMetrics()
    {
        _requests = _meter.CreateCounter<long>("http_requests_total", null, "Total number of requests by method, status and handler.");
        // No bucket boundaries: exposed as summaries without quantiles, as the instrumentator's Summary is.
        _requestSize = _meter.CreateHistogram<long>("http_request_size_bytes", null,
            "Content length of incoming requests by handler. Only value of header is respected. Otherwise ignored. No percentile calculated. ",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [] });
        _responseSize = _meter.CreateHistogram<long>("http_response_size_bytes", null,
            "Content length of outgoing responses by handler. Only value of header is respected. Otherwise ignored. No percentile calculated. ",
            advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [] });
        _durationHighResolution = _meter.CreateHistogram<double>("http_request_duration_highr_seconds", null,
            "Latency with many buckets but no API specific labels. Made for more accurate percentile calculations. ",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = HighResolutionBuckets });
        _duration = _meter.CreateHistogram<double>("http_request_duration_seconds", null,
            "Latency with only few buckets by handler. Made to be only used if aggregation by handler is important. ",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = LowResolutionBuckets });
    }

    /// <summary>The handler label of a request, or null when vLLM's instrumentator would not count it.</summary>
    internal static string? HandlerOf(HttpContext context)
    {
        var template = Template(context.GetEndpoint());
        // Exclusion looks at the template, or at the raw path of a request no route matches (whose label is "none").
        var handler = template ?? context.Request.Path.Value ?? "/";
        foreach (var excluded in ExcludedHandlers)
        {
            if (handler.Contains(excluded, StringComparison.Ordinal))
            {
                return null;
            }
        }
        return template ?? "none";
    }

    /// <summary>The route template as Starlette writes a route's path; null for no route, a 405 or the catch-all fallback.</summary>
    private static string? Template(Endpoint? endpoint)
    {
        if (endpoint is not RouteEndpoint { RoutePattern: var pattern })
        {
            return null;
        }
        foreach (var parameter in pattern.Parameters)
        {
            if (parameter.IsCatchAll)
            {
                return null;
            }
        }
        var raw = pattern.RawText ?? "";
        return raw.StartsWith('/') ? raw : "/" + raw;
    }

    internal void Record(string handler, string method, int status, long requestBytes, long responseBytes, double seconds)
    {
        var handlerTag = new KeyValuePair<string, object?>("handler", handler);
        var methodTag = new KeyValuePair<string, object?>("method", method);
        _requests.Add(1, handlerTag, methodTag, new("status", StatusGroups[Math.Clamp(status / 100, 0, 9)]));
        _requestSize.Record(requestBytes, handlerTag);
        _responseSize.Record(responseBytes, handlerTag);
        _durationHighResolution.Record(seconds);
        _duration.Record(seconds, handlerTag, methodTag);
    }

    public void Dispose() => _meter.Dispose();
}

/// <summary>
/// Feeds <see cref="HttpRequestMetrics"/>. It sits where vLLM's instrumentator sits: inside the API-key check (vLLM's
/// authentication middleware is added after it, so a 401 is not counted) and outside the error handling (a request that
/// fails is counted with the status it was answered with).
/// </summary>
public sealed class HttpRequestMetricsMiddleware(RequestDelegate next, HttpRequestMetrics metrics)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (HttpRequestMetrics.HandlerOf(context) is not { } handler)
        {
            await next(context);
            return;
        }
        var started = Stopwatch.GetTimestamp();
        var body = context.Features.GetRequiredFeature<IHttpResponseBodyFeature>();
        var counting = new CountingResponseBody(body);
        context.Features.Set<IHttpResponseBodyFeature>(counting);
        var completed = false;
        try
        {
            await next(context);
            completed = true;
        }
        finally
        {
            context.Features.Set(body);
            var response = context.Response;
            // As the instrumentator: the status the answer started with, 500 if the app failed before answering.
            var status = completed || response.HasStarted ? response.StatusCode : 500;
            // The instrumentator reads Content-Length; uvicorn sets it on every answer but a streamed one.
            var responseBytes = response.ContentLength
                ?? (response.ContentType?.StartsWith("text/event-stream", StringComparison.Ordinal) == true ? 0 : counting.BytesWritten);
            metrics.Record(handler, context.Request.Method, status, context.Request.ContentLength ?? 0, responseBytes,
                Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }
}
