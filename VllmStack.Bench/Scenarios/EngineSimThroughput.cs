using System.Text.Json;
using VllmStack.Bench.Wrk;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// How many non-streaming completions per second one EngineSim (instant preset) answers on this machine,
/// so that benchmarks of the router can show the simulator is not their bottleneck.
/// </summary>
public static class EngineSimThroughput
{
    public sealed record Settings(int Runs, TimeSpan Duration, int Connections, int Threads, int MaxTokens, string OutputDirectory);

    public sealed record Report(string Scenario, DateTimeOffset At, Settings Settings, IReadOnlyList<WrkResult> Runs, WrkResult Median);

    public static async Task<Report> RunAsync(Settings settings, CancellationToken cancellationToken)
    {
        await using var sim = await ProgramProcess.StartEngineSimAsync(
            ["bench-model", "--host", "127.0.0.1", "--port", "0", "--latency-preset", "instant"], cancellationToken);
        var url = new Uri(sim.Url, "/v1/completions");
        var body = $$"""{"model":"bench-model","prompt":"Hello world, how are you today?","max_tokens":{{settings.MaxTokens}},"ignore_eos":true}""";

        Console.WriteLine($"EngineSim at {sim.Url}: warming up…");
        await WrkRunner.RunAsync(url, body, settings.Connections, settings.Threads, TimeSpan.FromSeconds(3), cancellationToken);
        var runs = new List<WrkResult>();
        for (var i = 0; i < settings.Runs; i++)
        {
            var result = await WrkRunner.RunAsync(url, body, settings.Connections, settings.Threads, settings.Duration, cancellationToken);
            runs.Add(result);
            Console.WriteLine($"run {i + 1}/{settings.Runs}: {result.RequestsPerSecond,10:F0} req/s  p50 {result.P50Ms:F2} ms  p99 {result.P99Ms:F2} ms  errors {result.Errors}");
        }
        var median = Median(runs);
        Console.WriteLine($"median:    {median.RequestsPerSecond,10:F0} req/s  p50 {median.P50Ms:F2} ms  p99 {median.P99Ms:F2} ms  ({settings.Connections} connections, {settings.MaxTokens} output tokens)");

        var report = new Report("enginesim-throughput", DateTimeOffset.UtcNow, settings, runs, median);
        Directory.CreateDirectory(settings.OutputDirectory);
        var file = Path.Combine(settings.OutputDirectory, $"enginesim-throughput-{report.At:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        Console.WriteLine($"written: {file}");
        return report;
    }

    /// <summary>Per-figure medians: the machine is shared, single runs are noisy.</summary>
    internal static WrkResult Median(IReadOnlyList<WrkResult> runs)
    {
        static double Mid(IEnumerable<double> values)
        {
            var sorted = values.Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
        return new WrkResult(Mid(runs.Select(r => r.RequestsPerSecond)), Mid(runs.Select(r => r.P50Ms)), Mid(runs.Select(r => r.P90Ms)),
            Mid(runs.Select(r => r.P99Ms)), runs.Sum(r => r.Requests), runs.Sum(r => r.Errors));
    }
}
