using System.Text.Json;
using VllmStack.Bench.Wrk;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// What the router adds, measured against going straight to the same EngineSim (instant preset) in the same
/// run, alternating the two paths so that machine noise hits both alike: maximum non-streaming req/s (wrk),
/// latency at a fixed 1,000 req/s, and streaming time to first byte.
/// </summary>
public static class RouterOverhead
{
    public sealed record Settings(int Runs, TimeSpan Duration, int Connections, int Rate, int TtfbRequests, string OutputDirectory);

    public sealed record PathResult(WrkResult MaxThroughput, Percentiles FixedRate, Percentiles TimeToFirstByte);

    public sealed record Report(string Scenario, DateTimeOffset At, Settings Settings, IReadOnlyList<PathResult> Direct, IReadOnlyList<PathResult> Router, Summary Summary);

    public sealed record Summary(
        double DirectMaxRps, double RouterMaxRps, double MaxRpsRatio,
        double DirectP50Ms, double RouterP50Ms, double AddedP50Ms,
        double DirectP99Ms, double RouterP99Ms, double AddedP99Ms,
        double DirectTtfbP50Ms, double RouterTtfbP50Ms, double AddedTtfbP50Ms);

    public static async Task<Report> RunAsync(Settings settings, CancellationToken cancellationToken)
    {
        await using var engine = await ProgramProcess.StartEngineSimAsync(
            ["bench-model", "--host", "127.0.0.1", "--port", "0", "--latency-preset", "instant", "--max-num-seqs", "1024"], cancellationToken);
        await using var router = await ProgramProcess.StartRouterAsync(
            ["--host", "127.0.0.1", "--port", "0", "--static-backends", engine.Url.ToString(), "--static-models", "bench-model", "--routing-logic", "leastload"],
            cancellationToken);
        var body = """{"model":"bench-model","prompt":"Hello world, how are you today?","max_tokens":16,"ignore_eos":true}""";
        var streamBody = """{"model":"bench-model","prompt":"Hello world, how are you today?","max_tokens":16,"ignore_eos":true,"stream":true}""";
        using var probe = new LatencyProbe();
        var paths = new[] { ("direct", engine.Url), ("router", router.Url) };

        Console.WriteLine($"engine {engine.Url}, router {router.Url}: warming up…");
        foreach (var (_, url) in paths)
        {
            var target = new Uri(url, "/v1/completions");
            await WrkRunner.RunAsync(target, body, settings.Connections, 1, TimeSpan.FromSeconds(3), cancellationToken);
            await probe.FixedRateAsync(target, body, settings.Rate, TimeSpan.FromSeconds(2), cancellationToken);
            await probe.TimeToFirstByteAsync(target, streamBody, 50, cancellationToken);
        }

        var results = paths.ToDictionary(p => p.Item1, _ => new List<PathResult>());
        for (var run = 1; run <= settings.Runs; run++)
        {
            foreach (var (name, url) in run % 2 == 1 ? paths : paths.Reverse())
            {
                var target = new Uri(url, "/v1/completions");
                var max = await WrkRunner.RunAsync(target, body, settings.Connections, 1, settings.Duration, cancellationToken);
                var fixedRate = await probe.FixedRateAsync(target, body, settings.Rate, settings.Duration, cancellationToken);
                var ttfb = await probe.TimeToFirstByteAsync(target, streamBody, settings.TtfbRequests, cancellationToken);
                results[name].Add(new PathResult(max, fixedRate, ttfb));
                Console.WriteLine($"run {run}/{settings.Runs} {name,-6}: max {max.RequestsPerSecond,8:F0} req/s | at {settings.Rate} req/s p50 {fixedRate.P50:F2} ms p99 {fixedRate.P99:F2} ms (errors {fixedRate.Errors}) | TTFB p50 {ttfb.P50:F2} ms");
            }
        }

        var d = results["direct"];
        var r = results["router"];
        var summary = new Summary(
            Median.Of(d.Select(x => x.MaxThroughput.RequestsPerSecond)), Median.Of(r.Select(x => x.MaxThroughput.RequestsPerSecond)),
            Median.Of(r.Select(x => x.MaxThroughput.RequestsPerSecond)) / Median.Of(d.Select(x => x.MaxThroughput.RequestsPerSecond)),
            Median.Of(d.Select(x => x.FixedRate.P50)), Median.Of(r.Select(x => x.FixedRate.P50)), Median.Of(r.Zip(d, (a, b) => a.FixedRate.P50 - b.FixedRate.P50)),
            Median.Of(d.Select(x => x.FixedRate.P99)), Median.Of(r.Select(x => x.FixedRate.P99)), Median.Of(r.Zip(d, (a, b) => a.FixedRate.P99 - b.FixedRate.P99)),
            Median.Of(d.Select(x => x.TimeToFirstByte.P50)), Median.Of(r.Select(x => x.TimeToFirstByte.P50)), Median.Of(r.Zip(d, (a, b) => a.TimeToFirstByte.P50 - b.TimeToFirstByte.P50)));

        Console.WriteLine();
        Console.WriteLine($"                       direct      router      added / ratio   (medians of {settings.Runs} runs)");
        Console.WriteLine($"max req/s          {summary.DirectMaxRps,10:F0}  {summary.RouterMaxRps,10:F0}      ×{summary.MaxRpsRatio:F2}");
        Console.WriteLine($"p50 at {settings.Rate} req/s  {summary.DirectP50Ms,8:F2} ms {summary.RouterP50Ms,8:F2} ms   +{summary.AddedP50Ms:F2} ms");
        Console.WriteLine($"p99 at {settings.Rate} req/s  {summary.DirectP99Ms,8:F2} ms {summary.RouterP99Ms,8:F2} ms   +{summary.AddedP99Ms:F2} ms");
        Console.WriteLine($"stream TTFB p50     {summary.DirectTtfbP50Ms,8:F2} ms {summary.RouterTtfbP50Ms,8:F2} ms   +{summary.AddedTtfbP50Ms:F2} ms");

        var report = new Report("router-overhead", DateTimeOffset.UtcNow, settings, d, r, summary);
        Directory.CreateDirectory(settings.OutputDirectory);
        var file = Path.Combine(settings.OutputDirectory, $"router-overhead-{report.At:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        Console.WriteLine($"written: {file}");
        return report;
    }
}
