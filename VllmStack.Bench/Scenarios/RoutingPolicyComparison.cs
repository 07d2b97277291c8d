using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using VllmStack.Bench.MultiRound;
using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// Multi-round conversations on four simulated engines (h100-8b latency model, small KV caches so that placement
/// matters) behind the router: mean and p90 TTFT per routing policy, without and with the shared KV pool. Every
/// configuration gets a fresh Redis, cache server, engines and router, and the same seeded workload.
/// </summary>
public static class RoutingPolicyComparison
{
    public sealed record Settings(
        IReadOnlyList<string> Policies, int Engines, int NumGpuBlocks, TimeSpan Duration, int Users, int Rounds, double Qps,
        int SystemPromptTokens, int HistoryTokens, int QuestionTokens, int AnswerTokens, string OutputDirectory,
        IReadOnlyList<string> ExtraRouterArgs, IReadOnlyList<bool> PoolSettings);

    public sealed record Row(string Policy, bool Pool, int Requests, int Errors, double TtftMeanMs, double TtftP90Ms, double? CachedShare, IReadOnlyList<long> RequestsPerEngine);

    public static async Task<IReadOnlyList<Row>> RunAsync(Settings settings, CancellationToken cancellationToken)
    {
        var rows = new List<Row>();
        foreach (var pool in settings.PoolSettings)
        {
            foreach (var policy in settings.Policies)
            {
                var row = await RunOneAsync(settings, policy, pool, cancellationToken);
                rows.Add(row);
                Console.WriteLine($"{policy,-12} pool {(pool ? "on " : "off")}: {row.Requests,5} requests, {row.Errors} errors, TTFT mean {row.TtftMeanMs,7:F0} ms p90 {row.TtftP90Ms,7:F0} ms, cached {row.CachedShare:P0}, per engine {string.Join('/', row.RequestsPerEngine)}");
            }
        }
        Console.WriteLine();
        Console.WriteLine("policy        TTFT mean / p90 without pool   with pool");
        foreach (var policy in settings.Policies)
        {
            static string Cell(Row? row) => row is null ? "      –        " : $"{row.TtftMeanMs,7:F0} / {row.TtftP90Ms,7:F0} ms";
            Console.WriteLine($"{policy,-12}  {Cell(rows.SingleOrDefault(r => r.Policy == policy && !r.Pool))}        {Cell(rows.SingleOrDefault(r => r.Policy == policy && r.Pool))}");
        }
        Directory.CreateDirectory(settings.OutputDirectory);
        var file = Path.Combine(settings.OutputDirectory, $"routing-policies-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(new { scenario = "routing-policies", settings, rows }, new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        Console.WriteLine($"written: {file}");
        return rows;
    }

    private static async Task<Row> RunOneAsync(Settings settings, string policy, bool pool, CancellationToken cancellationToken)
    {
        await using var redis = await BenchRedis.StartAsync(cancellationToken);
        var started = new List<ProgramProcess>();
        try
        {
            var cacheServer = await ProgramProcess.StartCacheServerAsync(redis.Endpoint, cancellationToken);
            started.Add(cacheServer);
            List<string> engineArgs = ["bench-model", "--host", "127.0.0.1", "--port", "0", "--latency-preset", "h100-8b",
                "--num-gpu-blocks", settings.NumGpuBlocks.ToString(CultureInfo.InvariantCulture), "--max-model-len", "8192",
                "--kv-cache-server", cacheServer.Url.ToString(), "--seed", "7", "--enable-prompt-tokens-details"];
            if (pool)
            {
                engineArgs.Add("--kv-offload");
            }
            var engines = await Task.WhenAll(Enumerable.Range(0, settings.Engines).Select(_ => ProgramProcess.StartEngineSimAsync(engineArgs, cancellationToken)));
            started.AddRange(engines);
            var router = await ProgramProcess.StartRouterAsync(["--host", "127.0.0.1", "--port", "0",
                "--static-backends", string.Join(',', engines.Select(e => e.Url)), "--static-models", string.Join(',', engines.Select(_ => "bench-model")),
                "--routing-logic", policy, "--cache-server", cacheServer.Url.ToString(), "--engine-stats-interval", "0.5", .. settings.ExtraRouterArgs], cancellationToken);
            started.Add(router);
            using (var http = new HttpClient { BaseAddress = router.Url })
            {
                while (JsonNode.Parse(await http.GetStringAsync("engines", cancellationToken))!["engines"]!.AsArray().Count(e => e!["routable"]!.GetValue<bool>()) < settings.Engines)
                {
                    await Task.Delay(100, cancellationToken);
                }
            }

            var run = new MultiRoundSettings(router.Url, "bench-model", settings.Users, settings.Rounds, settings.SystemPromptTokens, settings.HistoryTokens,
                settings.QuestionTokens, settings.AnswerTokens, settings.Qps, settings.Duration, "x-user-id", null, 11, TimeSpan.FromSeconds(120), 0.05, settings.OutputDirectory);
            using var client = new OpenAiChatClient(new ChatEndpoint(router.Url, "bench-model", null, "x-user-id", settings.AnswerTokens, run.RequestTimeout));
            var result = await new MultiRoundRunner(run, client).RunAsync(cancellationToken);
            var summary = RunSummary.Of(result);
            using var metrics = new HttpClient { BaseAddress = router.Url, Timeout = TimeSpan.FromSeconds(10) };
            var perEngine = RequestsPerEngine(await metrics.GetStringAsync("metrics", cancellationToken));
            return new Row(policy, pool, summary.Requests, summary.Errors, summary.TtftMs.Mean, summary.TtftMs.P90, summary.CachedPromptShare, perEngine);
        }
        finally
        {
            foreach (var process in started)
            {
                await process.DisposeAsync();
            }
        }
    }

    /// <summary>How the router spread the requests: its per-engine request counter, busiest first.</summary>
    private static long[] RequestsPerEngine(string exposition) =>
        [.. PrometheusTextParser.Parse(exposition).Where(s => s.Name == "vllm:num_incoming_requests_total").Select(s => (long)s.Value).OrderDescending()];
}
