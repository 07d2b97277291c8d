using System.Text.Json;
using VllmStack.Autoscaler.Policy;

namespace VllmStack.Autoscaler.Inputs;

/// <summary>
/// Reads engine load through the router's <c>/engines</c>: one call gives every engine's scraped vLLM metrics
/// (<c>num_requests_waiting</c>, <c>num_requests_running</c>, <c>kv_cache_usage_perc</c>), the router's request rate
/// to each, its unserved requests per model and the requests waiting in its admission queue per model — the same view
/// the router routes by, without scraping engines twice.
/// </summary>
public sealed class RouterLoadReader(HttpClient http, Uri router, TimeSpan timeout)
{
    public Uri Router { get; } = router;

    public async Task<RouterView> ReadAsync(CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        using var response = await http.GetAsync(new Uri(Router, "engines"), deadline.Token).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        await using var body = await response.Content.ReadAsStreamAsync(deadline.Token).ConfigureAwait(false);
        using var document = await JsonDocument.ParseAsync(body, default, deadline.Token).ConfigureAwait(false);
        return Parse(document.RootElement, DateTimeOffset.UtcNow);
    }

    public static RouterView Parse(JsonElement root, DateTimeOffset at)
    {
        var engines = new List<EngineLoad>();
        foreach (var engine in root.GetProperty("engines").EnumerateArray())
        {
            var stats = engine.GetProperty("engine_stats");
            engines.Add(new EngineLoad(
                engine.GetProperty("url").GetString() ?? "",
                [.. engine.GetProperty("models").EnumerateArray().Select(m => m.GetString() ?? "")],
                engine.GetProperty("routable").GetBoolean(),
                stats.GetProperty("num_requests_waiting").GetDouble(),
                stats.GetProperty("num_requests_running").GetDouble(),
                stats.GetProperty("kv_cache_usage_perc").GetDouble(),
                engine.GetProperty("request_stats").GetProperty("qps").GetDouble(),
                stats.TryGetProperty("scraped_at", out var scraped) ? scraped.GetDateTimeOffset() : null));
        }
        var unserved = new Dictionary<string, long>(StringComparer.Ordinal);
        if (root.TryGetProperty("unserved_requests", out var perModel))
        {
            foreach (var model in perModel.EnumerateObject())
            {
                unserved[model.Name] = model.Value.GetInt64();
            }
        }
        var queued = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("queued_requests", out var queuedPerModel))
        {
            foreach (var model in queuedPerModel.EnumerateObject())
            {
                queued[model.Name] = model.Value.GetInt32();
            }
        }
        return new RouterView(at, engines, unserved, queued);
    }

    /// <summary>
    /// The sample for one model: engines that serve it and are routable; of those, the ones whose metrics were scraped
    /// within <paramref name="staleAfter"/> report (others count as not reporting, which blocks scaling down). Requests
    /// waiting in the router's admission queue count as waiting: held back from the engines, they are still demand.
    /// </summary>
    public static MetricSample Sample(RouterView view, string? model, TimeSpan staleAfter)
    {
        var serving = view.Engines.Where(e => e.Routable && (model is null || e.Models.Contains(model))).ToList();
        var reporting = serving.Where(e => e.ScrapedAt is { } at && view.At - at <= staleAfter).ToList();
        return new MetricSample(view.At, reporting.Count,
            reporting.Sum(e => e.Waiting) + (model is null ? view.Queued?.Values.Sum() ?? 0 : view.Queued?.GetValueOrDefault(model) ?? 0),
            reporting.Sum(e => e.Running),
            reporting.Count == 0 ? 0 : reporting.Average(e => e.KvUsage),
            serving.Sum(e => e.Qps),
            model is null ? view.Unserved.Values.Sum() : view.Unserved.GetValueOrDefault(model));
    }
}
