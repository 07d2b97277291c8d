using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// What <c>kvaware</c>'s lookup (engine tokenize + cache-server lookup) adds to a request: the same chat requests
/// through two routers over the same engines, one <c>roundrobin</c> and one <c>kvaware</c>, alternated so machine noise
/// hits both alike; engines use the instant latency model so the routers' own costs are what differs. Also reports
/// the lookup time the kvaware router measures itself and the cache server's share of it.
/// </summary>
public static class KvLookupLatency
{
    public sealed record Settings(int Runs, int Requests, int PromptTokens, int Concurrency, string OutputDirectory);

    public sealed record Measurement(double RoundRobinP50Ms, double RoundRobinP90Ms, double KvAwareP50Ms, double KvAwareP90Ms,
        double LookupMeanMs, double CacheServerMeanMs, long Fallbacks);

    public sealed record Report(string Scenario, DateTimeOffset At, Settings Settings, int PromptTokensMeasured, IReadOnlyList<Measurement> Runs, Measurement Median);

    public static async Task<Report> RunAsync(Settings settings, CancellationToken cancellationToken)
    {
        await using var redis = await BenchRedis.StartAsync(cancellationToken);
        await using var cacheServer = await ProgramProcess.StartCacheServerAsync(redis.Endpoint, cancellationToken);
        List<string> engineArgs = ["bench-model", "--host", "127.0.0.1", "--port", "0", "--latency-preset", "instant", "--max-model-len", "65536",
            "--kv-cache-server", cacheServer.Url.ToString()];
        await using var engineA = await ProgramProcess.StartEngineSimAsync(engineArgs, cancellationToken);
        await using var engineB = await ProgramProcess.StartEngineSimAsync(engineArgs, cancellationToken);
        List<string> routerArgs = ["--host", "127.0.0.1", "--port", "0", "--static-backends", $"{engineA.Url},{engineB.Url}",
            "--static-models", "bench-model,bench-model", "--cache-server", cacheServer.Url.ToString()];
        await using var roundRobin = await ProgramProcess.StartRouterAsync([.. routerArgs, "--routing-logic", "roundrobin"], cancellationToken);
        await using var kvAware = await ProgramProcess.StartRouterAsync([.. routerArgs, "--routing-logic", "kvaware"], cancellationToken);
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, MaxConnectionsPerServer = Math.Max(settings.Concurrency, 2) }) { Timeout = TimeSpan.FromSeconds(30) };

        // Eight conversations of the requested length; each is sent once first so an engine holds it, as in a chat's later rounds.
        var bodies = Enumerable.Range(0, 8).Select(i => ChatBody(i, settings.PromptTokens)).ToArray();
        var measuredTokens = await PromptTokensAsync(http, engineA.Url, bodies[0], cancellationToken);
        Console.WriteLine($"engines {engineA.Url} {engineB.Url}, routers roundrobin {roundRobin.Url} kvaware {kvAware.Url}; prompts of {measuredTokens} tokens, {settings.Concurrency} in flight");
        foreach (var body in bodies)
        {
            await SendAsync(http, kvAware.Url, body, cancellationToken);
            await SendAsync(http, roundRobin.Url, body, cancellationToken);
        }

        // A first, unrecorded run lets every process's JIT reach its optimised code, as in a long-running stack.
        await MeasureAsync(http, roundRobin.Url, kvAware.Url, cacheServer.Url, bodies, settings with { Requests = Math.Max(settings.Requests, 1000) }, cancellationToken);
        var runs = new List<Measurement>();
        for (var run = 1; run <= settings.Runs; run++)
        {
            var measurement = await MeasureAsync(http, roundRobin.Url, kvAware.Url, cacheServer.Url, bodies, settings, cancellationToken);
            runs.Add(measurement);
            Console.WriteLine($"run {run}/{settings.Runs}: roundrobin p50 {measurement.RoundRobinP50Ms:F2} p90 {measurement.RoundRobinP90Ms:F2} ms | kvaware p50 {measurement.KvAwareP50Ms:F2} p90 {measurement.KvAwareP90Ms:F2} ms | lookup mean {measurement.LookupMeanMs:F2} ms (cache server {measurement.CacheServerMeanMs:F2} ms), fallbacks {measurement.Fallbacks}");
        }
        var median = new Measurement(Median.Of(runs.Select(r => r.RoundRobinP50Ms)), Median.Of(runs.Select(r => r.RoundRobinP90Ms)),
            Median.Of(runs.Select(r => r.KvAwareP50Ms)), Median.Of(runs.Select(r => r.KvAwareP90Ms)), Median.Of(runs.Select(r => r.LookupMeanMs)),
            Median.Of(runs.Select(r => r.CacheServerMeanMs)), runs.Sum(r => r.Fallbacks));
        Console.WriteLine($"median: kvaware adds p50 {median.KvAwareP50Ms - median.RoundRobinP50Ms:F2} ms, p90 {median.KvAwareP90Ms - median.RoundRobinP90Ms:F2} ms; lookup mean {median.LookupMeanMs:F2} ms (cache server {median.CacheServerMeanMs:F2} ms) for {measuredTokens}-token prompts");
        var report = new Report("kv-lookup-latency", DateTimeOffset.UtcNow, settings, measuredTokens, runs, median);
        Directory.CreateDirectory(settings.OutputDirectory);
        var file = Path.Combine(settings.OutputDirectory, $"kv-lookup-latency-{report.At:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        Console.WriteLine($"written: {file}");
        return report;
    }

    private static async Task<Measurement> MeasureAsync(HttpClient http, Uri roundRobin, Uri kvAware, Uri cacheServer, string[] bodies, Settings settings, CancellationToken cancellationToken)
    {
        var lookupBefore = await HistogramAsync(http, kvAware, "vllmstack:router_kv_lookup_duration_seconds", cancellationToken);
        var cacheBefore = await HistogramAsync(http, cacheServer, "vllmstack:kv_lookup_duration_seconds", cancellationToken);
        var fallbacksBefore = await CounterAsync(http, kvAware, "vllmstack:router_kv_lookup_fallbacks_total", cancellationToken);
        var rr = new List<double>();
        var kv = new List<double>();
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, settings.Concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < settings.Requests)
            {
                // Alternate the two routers request by request.
                var throughKv = i % 2 == 1;
                var elapsed = await SendAsync(http, throughKv ? kvAware : roundRobin, bodies[i / 2 % bodies.Length], cancellationToken);
                lock (rr)
                {
                    (throughKv ? kv : rr).Add(elapsed);
                }
            }
        }));
        var lookupAfter = await HistogramAsync(http, kvAware, "vllmstack:router_kv_lookup_duration_seconds", cancellationToken);
        var cacheAfter = await HistogramAsync(http, cacheServer, "vllmstack:kv_lookup_duration_seconds", cancellationToken);
        var fallbacks = (long)(await CounterAsync(http, kvAware, "vllmstack:router_kv_lookup_fallbacks_total", cancellationToken) - fallbacksBefore);
        var (rrLatency, kvLatency) = (Percentiles.Of(rr, 0), Percentiles.Of(kv, 0));
        return new Measurement(rrLatency.P50, rrLatency.P90, kvLatency.P50, kvLatency.P90,
            MeanMs(lookupBefore, lookupAfter), MeanMs(cacheBefore, cacheAfter), fallbacks);
    }

    private static string ChatBody(int conversation, int promptTokens)
    {
        // EngineSim's tokenizer takes about four characters per token.
        var text = new StringBuilder();
        for (var i = 0; text.Length < promptTokens * 4; i++)
        {
            text.Append(CultureInfo.InvariantCulture, $"c{conversation} line {i}: the quick brown fox jumps over the lazy dog. ");
        }
        return JsonSerializer.Serialize(new
        {
            model = "bench-model",
            messages = new[] { new { role = "system", content = text.ToString() }, new { role = "user", content = $"Question {conversation}?" } },
            max_tokens = 1,
        });
    }

    private static async Task<double> SendAsync(HttpClient http, Uri router, string body, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var response = await http.PostAsync(new Uri(router, "/v1/chat/completions"), new StringContent(body, Encoding.UTF8, "application/json"), cancellationToken);
        await response.Content.ReadAsByteArrayAsync(cancellationToken);
        var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        return response.IsSuccessStatusCode ? elapsed : throw new InvalidOperationException($"{router} answered {(int)response.StatusCode}");
    }

    private static async Task<int> PromptTokensAsync(HttpClient http, Uri engine, string chatBody, CancellationToken cancellationToken)
    {
        using var response = await http.PostAsync(new Uri(engine, "/tokenize"), new StringContent(chatBody, Encoding.UTF8, "application/json"), cancellationToken);
        using var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
        return answer.RootElement.GetProperty("count").GetInt32();
    }

    private static async Task<(double Sum, double Count)> HistogramAsync(HttpClient http, Uri service, string name, CancellationToken cancellationToken)
    {
        var samples = PrometheusTextParser.Parse(await http.GetStringAsync(new Uri(service, "/metrics"), cancellationToken));
        return (samples.Sum(name + "_sum"), samples.Sum(name + "_count"));
    }

    private static async Task<double> CounterAsync(HttpClient http, Uri service, string name, CancellationToken cancellationToken) =>
        PrometheusTextParser.Parse(await http.GetStringAsync(new Uri(service, "/metrics"), cancellationToken)).Sum(name);

    private static double MeanMs((double Sum, double Count) before, (double Sum, double Count) after) =>
        after.Count > before.Count ? (after.Sum - before.Sum) / (after.Count - before.Count) * 1000 : double.NaN;
}
