using VllmStack.Router.Configuration;
using VllmStack.Router.Engines;
using VllmStack.Router.Health;
using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.Router.Stats;

/// <summary>
/// Reads each engine's load from its <c>/metrics</c>, under vLLM V1's names or the older ones
/// (<c>gpu_cache_usage_perc</c>, <c>gpu_prefix_cache_*</c>).
/// </summary>
public sealed class EngineStatsScraper(EngineRegistry registry, EngineControlClient client, RouterOptions options, ILogger<EngineStatsScraper> logger)
    : PeriodicEngineTask(registry, logger)
{
    private static readonly HashSet<string> Wanted =
    [
        "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc",
        "vllm:prefix_cache_hits_total", "vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_hits_total", "vllm:gpu_prefix_cache_queries_total",
        "vllm:gpu_prefix_cache_hit_rate", "vllm:lora_requests_info",
    ];

    protected override TimeSpan Interval => TimeSpan.FromSeconds(options.EngineStatsInterval);

    protected override async Task<bool> RunOnceAsync(Engine engine, CancellationToken cancellationToken)
    {
        var inFlight = engine.InFlight;
        var (ok, body) = await client.GetAsync(engine.Url, "metrics", cancellationToken).ConfigureAwait(false);
        if (ok)
        {
            var load = Read(body, inFlight, DateTimeOffset.UtcNow);
            // vLLM writes vllm:lora_requests_info only once its engine has stepped: an idle (or just restarted) engine's
            // slots are the ones it reported before.
            engine.SetLoad(load.MaxLoras is null && engine.Load.MaxLoras is { } known ? load with { MaxLoras = known } : load);
        }
        return ok;
    }

    internal static EngineLoad Read(string exposition, int routerInFlight, DateTimeOffset at)
    {
        var samples = PrometheusTextParser.Parse(exposition, Wanted.Contains);
        double Sum(string name) => samples.Where(s => s.Name == name).Sum(s => s.Value);
        double Max(string name) => samples.Where(s => s.Name == name).Select(s => s.Value).DefaultIfEmpty(0).Max();
        bool Has(string name) => samples.Any(s => s.Name == name);

        var kv = Has("vllm:kv_cache_usage_perc") ? Max("vllm:kv_cache_usage_perc") : Max("vllm:gpu_cache_usage_perc");
        double hitRate;
        if (Has("vllm:prefix_cache_queries_total") || Has("vllm:gpu_prefix_cache_queries_total"))
        {
            var queries = Sum("vllm:prefix_cache_queries_total") + Sum("vllm:gpu_prefix_cache_queries_total");
            var hits = Sum("vllm:prefix_cache_hits_total") + Sum("vllm:gpu_prefix_cache_hits_total");
            hitRate = queries > 0 ? hits / queries : 0;
        }
        else
        {
            hitRate = Max("vllm:gpu_prefix_cache_hit_rate");
        }
        // vLLM reports its --max-loras as a label of the LoRA info gauge (present only with --enable-lora).
        var maxLoras = samples.Where(s => s.Name == "vllm:lora_requests_info").Select(s => s.Labels.GetValueOrDefault("max_lora"))
            .Select(v => int.TryParse(v, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n > 0 ? n : (int?)null)
            .FirstOrDefault(n => n is not null);
        return new EngineLoad(Sum("vllm:num_requests_running"), Sum("vllm:num_requests_waiting"), kv, hitRate, routerInFlight, at) { MaxLoras = maxLoras };
    }
}
