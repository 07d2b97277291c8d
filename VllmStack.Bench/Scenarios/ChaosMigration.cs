using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// Chaos: streaming and plain chats through the router over three simulated engines (h100-8b latency model, long
/// distinct prompts so that recomputing a prefix costs what it does on a GPU), and one engine SIGKILLed (by its process
/// id) while they run. Per configuration — migration off (today's behaviour), migration on, migration on with EngineSim
/// writing KV blocks to the pool as they are computed (<c>--kv-store-on-compute</c>) — it reports how many requests
/// completed (a finish reason, <c>[DONE]</c>, no error frame), the error frames, and what a resumed stream paid: the gap
/// at the migration point against the stream's usual inter-token gap (client side) and the router's own measure of it
/// (<c>vllmstack:router_migration_delay_seconds</c>). Each configuration gets a fresh Redis, cache server, engines and router.
/// </summary>
public static class ChaosMigration
{
    public sealed record Settings(int Runs, int Streams, int Plain, int PromptTokens, int MaxTokens, TimeSpan KillAfter, string OutputDirectory);

    public sealed record Config(string Name, bool Migration, bool StoreOnCompute);

    public sealed record Row(
        string Config, int Run, int Requests, int Completed, int ErrorFrames, int Resumed, double ResumedGapMedianMs, double ResumedGapP90Ms,
        double UsualGapMs, double RouterDelayMeanMs, double PooledTokensFetched, string Migrations, string RequestsPerEngine, string PoolOperations);

    public static readonly IReadOnlyList<Config> Configs =
    [
        new("migration off", false, false),
        new("migration on", true, false),
        new("migration + store-on-compute", true, true),
    ];

    public static async Task<IReadOnlyList<Row>> RunAsync(Settings settings, CancellationToken cancellationToken)
    {
        var rows = new List<Row>();
        for (var run = 1; run <= settings.Runs; run++)
        {
            foreach (var config in Configs)
            {
                var row = await RunOneAsync(settings, config, run, cancellationToken);
                rows.Add(row);
                Console.WriteLine($"run {run} {config.Name,-30} completed {row.Completed}/{row.Requests}, error frames {row.ErrorFrames}, resumed {row.Resumed}, "
                    + $"gap at migration median {row.ResumedGapMedianMs:F0} ms p90 {row.ResumedGapP90Ms:F0} ms (usual {row.UsualGapMs:F0} ms), router delay {row.RouterDelayMeanMs:F0} ms, pooled tokens fetched {row.PooledTokensFetched:F0}; {row.Migrations}; per engine {row.RequestsPerEngine}; pool {row.PoolOperations}");
            }
        }
        Console.WriteLine();
        Console.WriteLine("configuration                    completed   error frames   resumed   extra TTFT at migration (median / p90)   router delay");
        foreach (var config in Configs)
        {
            var mine = rows.Where(r => r.Config == config.Name).ToList();
            var completed = mine.Sum(r => r.Completed);
            var requests = mine.Sum(r => r.Requests);
            Console.WriteLine($"{config.Name,-32} {completed * 100.0 / requests,6:F1} %   {mine.Sum(r => r.ErrorFrames),12}   {mine.Sum(r => r.Resumed),7}   "
                + $"{Median(mine.Select(r => r.ResumedGapMedianMs - r.UsualGapMs)),8:F0} / {Median(mine.Select(r => r.ResumedGapP90Ms - r.UsualGapMs)),5:F0} ms"
                + $"{"",22}{Median(mine.Select(r => r.RouterDelayMeanMs)),6:F0} ms");
        }
        Directory.CreateDirectory(settings.OutputDirectory);
        var file = Path.Combine(settings.OutputDirectory, $"chaos-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(new { scenario = "chaos", settings, rows }, new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }), cancellationToken);
        Console.WriteLine($"written: {file}");
        return rows;
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToList();
        return sorted.Count == 0 ? double.NaN : sorted[sorted.Count / 2];
    }

    private static double Percentile(List<double> sorted, double p) => sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))];

    /// <summary>One stream as the client saw it: when each content chunk came, how it ended.</summary>
    private sealed record StreamOutcome(bool Completed, bool ErrorFrame, List<double> GapsMs);

    private static async Task<Row> RunOneAsync(Settings settings, Config config, int run, CancellationToken cancellationToken)
    {
        await using var redis = await BenchRedis.StartAsync(cancellationToken);
        var started = new List<ProgramProcess>();
        try
        {
            var cacheServer = await ProgramProcess.StartCacheServerAsync(redis.Endpoint, cancellationToken);
            started.Add(cacheServer);
            List<string> engineArgs = ["bench-model", "--host", "127.0.0.1", "--port", "0", "--latency-preset", "h100-8b",
                "--num-gpu-blocks", "20000", "--max-model-len", "16384", "--kv-cache-server", cacheServer.Url.ToString(), "--seed", "7",
                "--kv-offload"];
            if (config.StoreOnCompute)
            {
                engineArgs.Add("--kv-store-on-compute");
            }
            var engines = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => ProgramProcess.StartEngineSimAsync(engineArgs, cancellationToken)));
            started.AddRange(engines);
            var router = await ProgramProcess.StartRouterAsync(["--host", "127.0.0.1", "--port", "0",
                "--static-backends", string.Join(',', engines.Select(e => e.Url)), "--static-models", string.Join(',', engines.Select(_ => "bench-model")),
                "--routing-logic", "kvaware", "--cache-server", cacheServer.Url.ToString(), "--engine-stats-interval", "0.5",
                "--max-migrations", config.Migration ? "2" : "0"], cancellationToken);
            started.Add(router);
            using var http = new HttpClient { BaseAddress = router.Url, Timeout = TimeSpan.FromSeconds(120) };
            while (JsonNode.Parse(await http.GetStringAsync("engines", cancellationToken))!["engines"]!.AsArray().Count(e => e!["routable"]!.GetValue<bool>()) < 3)
            {
                await Task.Delay(100, cancellationToken);
            }

            var streams = Enumerable.Range(0, settings.Streams).Select(i => StreamAsync(http, Body(settings, run, i, stream: true), cancellationToken)).ToArray();
            var plains = Enumerable.Range(0, settings.Plain).Select(async i =>
            {
                try
                {
                    using var response = await http.PostAsJsonAsync("v1/chat/completions", Body(settings, run, 1000 + i, stream: false), cancellationToken);
                    var text = await response.Content.ReadAsStringAsync(cancellationToken);
                    return response.IsSuccessStatusCode && JsonNode.Parse(text)?["choices"]?[0]?["finish_reason"] is not null;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }).ToArray();
            await Task.Delay(settings.KillAfter, cancellationToken);
            // One engine dies as a crashed pod does: SIGKILL to its own process id.
            engines[0].Kill();
            var streamOutcomes = await Task.WhenAll(streams);
            var plainOutcomes = await Task.WhenAll(plains);

            var metrics = PrometheusTextParser.Parse(await http.GetStringAsync("metrics", cancellationToken));
            var delaySum = metrics.Sum("vllmstack:router_migration_delay_seconds_sum");
            var delayCount = metrics.Sum("vllmstack:router_migration_delay_seconds_count");
            var resumedByRouter = (int)metrics.Sum("vllmstack:router_stream_migrations_total", ("outcome", "resumed"));
            double pooled = 0;
            foreach (var engine in engines.Skip(1))
            {
                using var engineHttp = new HttpClient { BaseAddress = engine.Url, Timeout = TimeSpan.FromSeconds(10) };
                pooled += PrometheusTextParser.Parse(await engineHttp.GetStringAsync("metrics", cancellationToken)).Sum("vllm:external_prefix_cache_hits_total");
            }

            // A resumed stream shows one gap far above its usual inter-token gap, at the migration point: the streams the router
            // resumed are taken to be those with the largest such gaps.
            var usual = Median(streamOutcomes.SelectMany(s => s.GapsMs));
            var resumedGaps = streamOutcomes.Where(s => s.Completed && s.GapsMs.Count > 0)
                .Select(s => s.GapsMs.Max()).OrderDescending().Take(config.Migration ? resumedByRouter : 0).Order().ToList();
            var migrations = string.Join(' ', metrics.Where(s => s.Name == "vllmstack:router_stream_migrations_total")
                .Select(s => $"{s.Labels.GetValueOrDefault("reason")}/{s.Labels.GetValueOrDefault("outcome")}={s.Value}"));
            var perEngine = string.Join('/', metrics.Where(s => s.Name == "vllm:num_incoming_requests_total").Select(s => s.Value));
            using var cacheHttp = new HttpClient { BaseAddress = cacheServer.Url, Timeout = TimeSpan.FromSeconds(10) };
            var poolOperations = string.Join(' ', PrometheusTextParser.Parse(await cacheHttp.GetStringAsync("metrics", cancellationToken))
                .Where(s => s.Name.StartsWith("vllmstack:kv_pool_", StringComparison.Ordinal) && s.Name.EndsWith("_total", StringComparison.Ordinal))
                .Select(s => $"{string.Join(',', s.Labels.Values)}={s.Value}"));
            return new Row(config.Name, run, settings.Streams + settings.Plain,
                streamOutcomes.Count(s => s.Completed) + plainOutcomes.Count(ok => ok), streamOutcomes.Count(s => s.ErrorFrame),
                config.Migration ? resumedByRouter : 0, Percentile(resumedGaps, 0.5), Percentile(resumedGaps, 0.9), usual,
                delayCount == 0 ? double.NaN : delaySum / delayCount * 1000, pooled, migrations, perEngine, poolOperations);
        }
        finally
        {
            foreach (var process in started)
            {
                await process.DisposeAsync();
            }
        }
    }

    /// <summary>A long prompt of its own per request (no two share a prefix beyond the template), 200 tokens asked for.</summary>
    private static object Body(Settings settings, int run, int i, bool stream)
    {
        var words = new StringBuilder($"Run {run} document {i}:");
        var random = new Random(run * 100_003 + i);
        // Four-letter words: one token each with the leading space (EngineSim's tokenizer, as Llama's for common words).
        for (var t = 0; t < settings.PromptTokens; t++)
        {
            words.Append(' ');
            for (var c = 0; c < 4; c++)
            {
                words.Append((char)('a' + random.Next(26)));
            }
        }
        var messages = new[] { new { role = "user", content = words.ToString() } };
        return stream
            ? new { model = "bench-model", messages, max_tokens = settings.MaxTokens, ignore_eos = true, seed = i, stream = true }
            : new { model = "bench-model", messages, max_tokens = settings.MaxTokens, ignore_eos = true, seed = i, stream = false };
    }

    private static async Task<StreamOutcome> StreamAsync(HttpClient http, object body, CancellationToken cancellationToken)
    {
        var gaps = new List<double>();
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = JsonContent.Create(body) };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return new StreamOutcome(false, false, gaps);
            }
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
            var clock = Stopwatch.StartNew();
            double? last = null;
            bool finished = false, error = false, done = false;
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    continue;
                }
                var data = line["data: ".Length..];
                if (data == "[DONE]")
                {
                    done = true;
                    continue;
                }
                var chunk = JsonNode.Parse(data)!;
                if (chunk["error"] is not null)
                {
                    error = true;
                    continue;
                }
                var choice = chunk["choices"]?.AsArray().FirstOrDefault();
                if (choice?["delta"]?["content"]?.GetValue<string>() is { Length: > 0 })
                {
                    var now = clock.Elapsed.TotalMilliseconds;
                    if (last is { } previous)
                    {
                        gaps.Add(now - previous);
                    }
                    last = now;
                }
                finished |= choice?["finish_reason"]?.GetValue<string>() is not null;
            }
            return new StreamOutcome(finished && done && !error, error, gaps);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            return new StreamOutcome(false, false, gaps);
        }
    }
}
