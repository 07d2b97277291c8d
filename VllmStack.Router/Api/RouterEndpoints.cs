using System.Reflection;
using System.Text.Encodings.Web;
using System.Text.Json;
using VllmStack.Router.Engines;
using VllmStack.Router.Routing;
using VllmStack.Router.Stats;

namespace VllmStack.Router.Api;

/// <summary>The router's own routes: <c>/v1/models</c> across engines, <c>/engines</c>, <c>/version</c>.</summary>
public static class RouterEndpoints
{
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, Indented = false };

    public static string Version { get; } =
        typeof(RouterEndpoints).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/models", (HttpContext context, EngineRegistry registry, Lora.LoraCatalog catalog) => WriteAsync(context, w => WriteModels(w, registry, catalog)));
        app.MapGet("/engines", (HttpContext context, EngineRegistry registry, RoutingPolicyHolder policies, ModelDemand demand, Admission.AdmissionGate admission) =>
            WriteAsync(context, w => WriteEngines(w, registry, policies, demand, admission)));
        app.MapGet("/version", (HttpContext context) => WriteAsync(context, w =>
        {
            w.WriteStartObject();
            w.WriteString("version", Version);
            w.WriteString("name", "vllmstack-router");
            w.WriteEndObject();
        }));
    }

    /// <summary>
    /// Every model any engine serves, once, base models and adapters alike, and the catalogue's adapters of those base
    /// models that no engine holds right now (the first request loads them), with their base model as <c>parent</c>, as vLLM lists adapters.
    /// </summary>
    private static void WriteModels(Utf8JsonWriter w, EngineRegistry registry, Lora.LoraCatalog catalog)
    {
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var served = registry.Engines.SelectMany(e => e.ModelInfos).ToList();
        var baseModels = new Dictionary<string, ModelInfo>(StringComparer.Ordinal);
        foreach (var model in served.Where(m => m.Parent is null))
        {
            baseModels.TryAdd(model.Id, model);
        }
        var created = baseModels.Values.Select(m => m.Created).DefaultIfEmpty(0).Max();
        var catalogued = catalog.Adapters.Values.Where(a => baseModels.ContainsKey(a.BaseModel)).OrderBy(a => a.Name, StringComparer.Ordinal)
            .Select(a => new ModelInfo(a.Name, a.Source, a.BaseModel, null, created));
        foreach (var model in served.Concat(catalogued))
        {
            if (!seen.Add(model.Id))
            {
                continue;
            }
            w.WriteStartObject();
            w.WriteString("id", model.Id);
            w.WriteString("object", "model");
            w.WriteNumber("created", model.Created);
            w.WriteString("owned_by", model.OwnedBy);
            w.WriteString("root", model.Root ?? model.Id);
            if (model.Parent is null)
            {
                w.WriteNull("parent");
            }
            else
            {
                w.WriteString("parent", model.Parent);
            }
            if (model.MaxModelLen is { } max)
            {
                w.WriteNumber("max_model_len", max);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteEngines(Utf8JsonWriter w, EngineRegistry registry, RoutingPolicyHolder policies, ModelDemand demand, Admission.AdmissionGate admission)
    {
        var now = DateTimeOffset.UtcNow;
        w.WriteStartObject();
        w.WriteString("routing_logic", policies.Current.Name);
        w.WriteStartArray("engines");
        foreach (var engine in registry.Engines)
        {
            var load = engine.Load;
            var stats = engine.Stats.Snapshot();
            w.WriteStartObject();
            w.WriteString("url", engine.Url.ToString());
            w.WriteString("name", engine.Name);
            w.WriteStartArray("models");
            foreach (var model in engine.Models.Order(StringComparer.Ordinal))
            {
                w.WriteStringValue(model);
            }
            w.WriteEndArray();
            w.WriteString("health", engine.IsRoutable(now) ? "healthy" : !engine.ModelsKnown ? "starting" : !engine.ProbeHealthy ? "unhealthy" : "ejected");
            w.WriteBoolean("routable", engine.IsRoutable(now));
            w.WriteNumber("consecutive_gateway_failures", engine.ConsecutiveGatewayFailures);
            w.WriteNumber("consecutive_5xx", engine.Consecutive5xx);
            w.WriteNumber("ejections", engine.Ejections);
            if (engine.IsEjected(now))
            {
                w.WriteString("ejected_until", engine.EjectedUntil);
            }
            w.WriteNumber("in_flight", engine.InFlight);
            if (load.MaxLoras is { } maxLoras)
            {
                w.WriteNumber("max_loras", maxLoras); // adapter slots, as the engine reported them
            }
            w.WriteStartObject("engine_stats");
            w.WriteNumber("num_requests_running", load.Running);
            w.WriteNumber("num_requests_waiting", load.Waiting);
            w.WriteNumber("kv_cache_usage_perc", load.KvCacheUsage);
            w.WriteNumber("prefix_cache_hit_rate", load.PrefixCacheHitRate);
            if (load.ScrapedAt > DateTimeOffset.MinValue)
            {
                w.WriteString("scraped_at", load.ScrapedAt);
            }
            w.WriteEndObject();
            w.WriteStartObject("request_stats");
            w.WriteNumber("qps", stats.Qps);
            w.WriteNumber("avg_latency", stats.AvgLatency);
            w.WriteNumber("avg_ttft", stats.AvgTtft);
            w.WriteNumber("avg_itl", stats.AvgItl);
            w.WriteNumber("requests", stats.Requests);
            w.WriteNumber("failures", stats.Failures);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        // Requests turned away for want of an engine, per model, since the router started.
        w.WriteStartObject("unserved_requests");
        foreach (var (model, count) in demand.UnservedTotals.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            w.WriteNumber(model, count);
        }
        w.WriteEndObject();
        // Requests waiting in the admission queue now, per model (demand the engines have not taken yet).
        w.WriteStartObject("queued_requests");
        foreach (var (model, count) in admission.QueuedPerModel().OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            w.WriteNumber(model, count);
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static async Task WriteAsync(HttpContext context, Action<Utf8JsonWriter> write)
    {
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.BodyWriter, Options);
        write(writer);
        await writer.FlushAsync(context.RequestAborted);
    }
}
