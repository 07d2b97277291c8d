using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using VllmStack.Bench.MultiRound;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// The router under more load than its engines can take, without and with admission control, side by side: simulated
/// engines of a small batch (known capacity, measured first with exactly as many clients as the engines run at once),
/// then requests sent at a fixed rate of 1×, 2×, 5× … that capacity. Per configuration: goodput (successful requests and
/// output tokens per second), p99 TTFT of the successful requests, the share shed with 429 and the share that failed
/// otherwise (timeouts of the client included). Every configuration gets fresh engines and a fresh router; medians over runs.
/// </summary>
public static class OverloadComparison
{
    private const string Model = "bench-model";

    public sealed record Settings(
        int Engines, int MaxNumSeqs, double InterTokenMs, int AnswerTokens, IReadOnlyList<double> Multiples, TimeSpan Duration, int Runs,
        TimeSpan RequestTimeout, int Clients, IReadOnlyList<string> AdmissionArgs, string OutputDirectory);

    public sealed record Run(double OfferedRps, int Sent, int Succeeded, int Shed, int Failed, double GoodputRps, double TokensPerSecond, double TtftP99Ms);

    public sealed record Row(double Multiple, bool Admission, double OfferedRps, int Sent, double GoodputRps, double TokensPerSecond, double TtftP99Ms,
        double ShedShare, double FailedShare, IReadOnlyList<Run> Runs);

    public static async Task<IReadOnlyList<Row>> RunAsync(Settings settings, CancellationToken cancellationToken)
    {
        var capacity = await MeasureCapacityAsync(settings, cancellationToken);
        Console.WriteLine($"capacity: {capacity:F1} requests/s ({settings.Engines} engines × {settings.MaxNumSeqs} sequences, {settings.AnswerTokens} tokens at {settings.InterTokenMs} ms)");
        var rows = new List<Row>();
        foreach (var multiple in settings.Multiples)
        {
            foreach (var admission in new[] { false, true })
            {
                var row = await RunConfigurationAsync(settings, multiple, admission, capacity * multiple, cancellationToken);
                rows.Add(row);
                Console.WriteLine($"{multiple,4:0.#}× admission {(admission ? "on " : "off")}: {Describe(row)}");
            }
        }
        Console.WriteLine();
        Console.WriteLine("load  admission  offered req/s  goodput req/s  tokens/s  p99 TTFT ms  shed (429)  failed");
        foreach (var row in rows)
        {
            Console.WriteLine($"{row.Multiple,3:0.#}×  {(row.Admission ? "on " : "off"),-9}  {row.OfferedRps,13:F1}  {row.GoodputRps,13:F1}  {row.TokensPerSecond,8:F0}  {row.TtftP99Ms,11:F0}  {row.ShedShare,10:P0}  {row.FailedShare,6:P0}");
        }
        Directory.CreateDirectory(settings.OutputDirectory);
        var file = Path.Combine(settings.OutputDirectory, $"overload-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(new { scenario = "overload", settings, capacityRps = capacity, rows },
            new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
        Console.WriteLine($"written: {file}");
        return rows;
    }

    private static string Describe(Row row) =>
        $"offered {row.OfferedRps:F1}/s, goodput {row.GoodputRps:F1}/s ({row.TokensPerSecond:F0} tokens/s), p99 TTFT {row.TtftP99Ms:F0} ms, shed {row.ShedShare:P0}, failed {row.FailedShare:P0} (median of {row.Runs.Count})";

    /// <summary>Requests per second the engines complete with exactly as many clients as they run at once (no admission).</summary>
    private static async Task<double> MeasureCapacityAsync(Settings settings, CancellationToken cancellationToken)
    {
        await using var stack = await Stack.StartAsync(settings, admission: false, cancellationToken);
        using var client = stack.Client(settings);
        var clock = Stopwatch.StartNew();
        var window = TimeSpan.FromSeconds(Math.Max(4, settings.Duration.TotalSeconds / 2));
        var completed = 0;
        await Task.WhenAll(Enumerable.Range(0, settings.Engines * settings.MaxNumSeqs).Select(async seat =>
        {
            while (clock.Elapsed < window)
            {
                var result = await client.SendAsync(Turn($"seat-{seat}", seat), cancellationToken);
                if (result.Record.Succeeded)
                {
                    Interlocked.Increment(ref completed);
                }
            }
        }));
        return completed / clock.Elapsed.TotalSeconds;
    }

    private static async Task<Row> RunConfigurationAsync(Settings settings, double multiple, bool admission, double rate, CancellationToken cancellationToken)
    {
        await using var stack = await Stack.StartAsync(settings, admission, cancellationToken);
        using var client = stack.Client(settings);
        var runs = new List<Run>();
        for (var r = 0; r < settings.Runs; r++)
        {
            runs.Add(await OneRunAsync(settings, client, rate, cancellationToken));
            await stack.WaitIdleAsync(cancellationToken);
        }
        double Median(Func<Run, double> value) => Distribution.Percentile([.. runs.Select(value).Order()], 50);
        return new Row(multiple, admission, rate, runs[0].Sent, Median(r => r.GoodputRps), Median(r => r.TokensPerSecond), Median(r => r.TtftP99Ms),
            Median(r => (double)r.Shed / r.Sent), Median(r => (double)r.Failed / r.Sent), runs);
    }

    /// <summary>Sends at a fixed rate for the run's duration (open loop: arrivals do not wait for answers) and waits for every answer.</summary>
    private static async Task<Run> OneRunAsync(Settings settings, OpenAiChatClient client, double rate, CancellationToken cancellationToken)
    {
        var count = (int)Math.Round(rate * settings.Duration.TotalSeconds);
        var results = await OpenLoopLoad.SendAsync(client, rate, count, i => Turn($"client-{i % settings.Clients}", i), cancellationToken);
        var ok = results.Where(r => r.Record.Succeeded).ToList();
        // Goodput over the time the offered load took to be answered: a backlog served late lengthens it.
        var span = OpenLoopLoad.SpanSeconds(results, settings.Duration);
        var shed = results.Count(r => r.Record.HttpStatus == 429);
        var ttfts = ok.Select(r => r.Record.TtftMs ?? r.Record.E2eMs).Order().ToList();
        return new Run(rate, count, ok.Count, shed, count - ok.Count - shed, ok.Count / span,
            ok.Sum(r => r.Record.CompletionTokens ?? r.Record.ContentChunks) / span, ttfts.Count == 0 ? double.NaN : Distribution.Percentile(ttfts, 99));
    }

    private static ChatTurn Turn(string user, int i) => new(user, 0, [new ChatMessage(ChatMessage.User, $"Request {i.ToString(CultureInfo.InvariantCulture)}: tell me a story.")]);

    /// <summary>Simulated engines and a router over them, with admission control on or off.</summary>
    private sealed class Stack : IAsyncDisposable
    {
        private readonly List<ProgramProcess> _processes;

        private Stack(List<ProgramProcess> processes, ProgramProcess router)
        {
            _processes = processes;
            Router = router;
        }

        public ProgramProcess Router { get; }

        public static async Task<Stack> StartAsync(Settings settings, bool admission, CancellationToken cancellationToken)
        {
            var processes = new List<ProgramProcess>();
            try
            {
                string[] engineArgs = [Model, "--host", "127.0.0.1", "--port", "0", "--latency-preset", "fast", "--seed", "7",
                    "--max-num-seqs", settings.MaxNumSeqs.ToString(CultureInfo.InvariantCulture),
                    "--inter-token-latency-ms", settings.InterTokenMs.ToString(CultureInfo.InvariantCulture), "--time-factor-under-load", "1"];
                processes.AddRange(await Task.WhenAll(Enumerable.Range(0, settings.Engines).Select(_ => ProgramProcess.StartEngineSimAsync(engineArgs, cancellationToken))));
                var engines = processes.ToList();
                var router = await ProgramProcess.StartRouterAsync(["--host", "127.0.0.1", "--port", "0",
                    "--static-backends", string.Join(',', engines.Select(e => e.Url)), "--static-models", string.Join(',', engines.Select(_ => Model)),
                    "--routing-logic", "leastload", "--engine-stats-interval", "0.5", .. admission ? settings.AdmissionArgs : []], cancellationToken);
                processes.Add(router);
                var stack = new Stack(processes, router);
                await RouterEngines.WaitRoutableAsync(router.Url, settings.Engines, cancellationToken);
                return stack;
            }
            catch
            {
                foreach (var process in processes)
                {
                    await process.DisposeAsync();
                }
                throw;
            }
        }

        public OpenAiChatClient Client(Settings settings) =>
            new(new ChatEndpoint(Router.Url, Model, null, "x-user-id", settings.AnswerTokens, settings.RequestTimeout));

        /// <summary>Until the router has nothing in flight (requests cancelled by the client's timeout end at the engines too).</summary>
        public Task WaitIdleAsync(CancellationToken cancellationToken) =>
            RouterEngines.WaitAsync(Router.Url, e => e.All(x => x!["in_flight"]!.GetValue<int>() == 0), cancellationToken);

        public async ValueTask DisposeAsync()
        {
            foreach (var process in _processes)
            {
                await process.DisposeAsync();
            }
        }
    }
}
