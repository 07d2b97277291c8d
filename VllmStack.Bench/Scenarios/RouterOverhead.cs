using System.Text.Json;
using VllmStack.Bench.Wrk;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// What the router adds, measured against going straight to the same EngineSim (instant preset) and against nginx as a
/// plain keep-alive proxy in front of it, in the same run, rotating the order of the paths from run to run so that
/// machine noise hits all alike: maximum non-streaming req/s (wrk), latency at a fixed rate (1,000 req/s), and
/// streaming time to first byte. A second router build (<c>--baseline-router</c>) can join as one more path, to
/// compare two versions of the router side by side.
/// </summary>
public static class RouterOverhead
{
    public sealed record Settings(int Runs, TimeSpan Duration, int Connections, int Rate, int TtfbRequests, string OutputDirectory, string? BaselineRouterDll = null);

    public sealed record PathResult(WrkResult MaxThroughput, Percentiles FixedRate, Percentiles TimeToFirstByte);

    /// <summary>Medians of one path; added latencies are medians of the per-run differences to the direct path.</summary>
    public sealed record PathSummary(
        string Path, double MaxRps, double MaxRpsRatioToDirect, double P50Ms, double AddedP50Ms, double P99Ms, double AddedP99Ms,
        double TtfbP50Ms, double AddedTtfbP50Ms, long Errors);

    public sealed record Report(string Scenario, DateTimeOffset At, Settings Settings, IReadOnlyDictionary<string, List<PathResult>> Runs,
        IReadOnlyList<PathSummary> Summary, double? RouterToNginxMaxRps);

    public static async Task<Report> RunAsync(Settings settings, CancellationToken cancellationToken)
    {
        await using var engine = await ProgramProcess.StartEngineSimAsync(
            ["bench-model", "--host", "127.0.0.1", "--port", "0", "--latency-preset", "instant", "--max-num-seqs", "1024"], cancellationToken);
        string[] routerArgs = ["--host", "127.0.0.1", "--port", "0", "--static-backends", engine.Url.ToString(), "--static-models", "bench-model", "--routing-logic", "leastload"];
        await using var router = await ProgramProcess.StartRouterAsync(routerArgs, cancellationToken);
        await using var baseline = settings.BaselineRouterDll is { } dll ? await ProgramProcess.StartRouterAsync(routerArgs, cancellationToken, dll) : null;
        var nginxPath = NginxProxy.Find();
        await using var nginx = nginxPath is null ? null : await NginxProxy.StartAsync(nginxPath, engine.Url, cancellationToken);
        if (nginx is null)
        {
            Console.WriteLine("nginx not found (apt-get install nginx): measuring without it");
        }

        var body = """{"model":"bench-model","prompt":"Hello world, how are you today?","max_tokens":16,"ignore_eos":true}""";
        var streamBody = """{"model":"bench-model","prompt":"Hello world, how are you today?","max_tokens":16,"ignore_eos":true,"stream":true}""";
        using var probe = new LatencyProbe();
        var paths = new List<(string Name, Uri Url)> { ("direct", engine.Url), ("router", router.Url) };
        if (baseline is not null)
        {
            paths.Add(("baseline", baseline.Url));
        }
        if (nginx is not null)
        {
            paths.Add(("nginx", nginx.Url));
        }

        Console.WriteLine($"engine {engine.Url}; {string.Join(", ", paths.Skip(1).Select(p => $"{p.Name} {p.Url}"))}: warming up…");
        foreach (var (_, url) in paths)
        {
            var target = new Uri(url, "/v1/completions");
            await WrkRunner.RunAsync(target, body, settings.Connections, 1, TimeSpan.FromSeconds(3), cancellationToken);
            await probe.FixedRateAsync(target, body, settings.Rate, TimeSpan.FromSeconds(2), cancellationToken);
            await probe.TimeToFirstByteAsync(target, streamBody, 50, cancellationToken);
        }

        var results = paths.ToDictionary(p => p.Name, _ => new List<PathResult>());
        for (var run = 1; run <= settings.Runs; run++)
        {
            // Each run starts with a different path, so that no path always follows the same one.
            foreach (var (name, url) in paths.Skip((run - 1) % paths.Count).Concat(paths.Take((run - 1) % paths.Count)))
            {
                var target = new Uri(url, "/v1/completions");
                var max = await WrkRunner.RunAsync(target, body, settings.Connections, 1, settings.Duration, cancellationToken);
                var fixedRate = await probe.FixedRateAsync(target, body, settings.Rate, settings.Duration, cancellationToken);
                var ttfb = await probe.TimeToFirstByteAsync(target, streamBody, settings.TtfbRequests, cancellationToken);
                results[name].Add(new PathResult(max, fixedRate, ttfb));
                Console.WriteLine($"run {run}/{settings.Runs} {name,-8}: max {max.RequestsPerSecond,8:F0} req/s | at {settings.Rate} req/s p50 {fixedRate.P50:F2} ms p99 {fixedRate.P99:F2} ms (errors {fixedRate.Errors}) | TTFB p50 {ttfb.P50:F2} ms");
            }
        }

        var direct = results["direct"];
        var summary = paths.Select(p =>
        {
            var r = results[p.Name];
            return new PathSummary(p.Name,
                Median.Of(r.Select(x => x.MaxThroughput.RequestsPerSecond)),
                Median.Of(r.Select(x => x.MaxThroughput.RequestsPerSecond)) / Median.Of(direct.Select(x => x.MaxThroughput.RequestsPerSecond)),
                Median.Of(r.Select(x => x.FixedRate.P50)), Median.Of(r.Zip(direct, (a, b) => a.FixedRate.P50 - b.FixedRate.P50)),
                Median.Of(r.Select(x => x.FixedRate.P99)), Median.Of(r.Zip(direct, (a, b) => a.FixedRate.P99 - b.FixedRate.P99)),
                Median.Of(r.Select(x => x.TimeToFirstByte.P50)), Median.Of(r.Zip(direct, (a, b) => a.TimeToFirstByte.P50 - b.TimeToFirstByte.P50)),
                r.Sum(x => x.MaxThroughput.Errors + x.FixedRate.Errors + x.TimeToFirstByte.Errors));
        }).ToList();
        double? toNginx = nginx is null ? null : summary.Single(s => s.Path == "router").MaxRps / summary.Single(s => s.Path == "nginx").MaxRps;

        Console.WriteLine();
        Console.WriteLine($"(medians of {settings.Runs} runs; added = median of per-run differences to direct)");
        Console.WriteLine($"{"path",-9} {"max req/s",10} {"× direct",9} {"p50 ms",8} {"added",7} {"p99 ms",8} {"added",7} {"TTFB ms",8} {"added",7} {"errors",7}");
        foreach (var s in summary)
        {
            Console.WriteLine($"{s.Path,-9} {s.MaxRps,10:F0} {s.MaxRpsRatioToDirect,9:F2} {s.P50Ms,8:F2} {s.AddedP50Ms,7:F2} {s.P99Ms,8:F2} {s.AddedP99Ms,7:F2} {s.TtfbP50Ms,8:F2} {s.AddedTtfbP50Ms,7:F2} {s.Errors,7}");
        }
        if (toNginx is { } ratio)
        {
            Console.WriteLine($"router max req/s = ×{ratio:F2} nginx's");
        }

        var report = new Report("router-overhead", DateTimeOffset.UtcNow, settings, results, summary, toNginx);
        Directory.CreateDirectory(settings.OutputDirectory);
        var file = Path.Combine(settings.OutputDirectory, $"router-overhead-{report.At:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        Console.WriteLine($"written: {file}");
        return report;
    }
}
