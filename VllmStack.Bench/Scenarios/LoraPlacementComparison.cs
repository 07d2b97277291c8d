using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using VllmStack.Bench.MultiRound;
using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// Many LoRA adapters on few engines, the router's two placements side by side: <c>--lora-placement demand</c> (the
/// manager places adapters where demand is and routing prefers engines holding them) against <c>on-miss</c> (route as
/// if every engine had every adapter, and load it where the request landed). Simulated engines run with
/// <c>--enable-lora --max-loras N</c> and runtime LoRA updating, each adapter load taking <c>--lora-load-seconds</c>
/// during which the engine runs no step (as vLLM's engine core). Requests name adapters drawn from a Zipf distribution
/// (fixed seed: both placements of a run get the same sequence), sent open loop at a fixed rate. Per run and placement:
/// throughput (successful requests per second), TTFT p50/p99 of the successful ones, adapter loads per minute (the
/// router's <c>vllmstack:router_lora_adapter_loads_total</c>) and failed requests. Every run starts fresh engines (no
/// adapter loaded) and a fresh router; medians over runs.
/// </summary>
public static class LoraPlacementComparison
{
    private const string Model = "bench-model";

    public static readonly IReadOnlyList<string> Placements = ["demand", "on-miss"];

    public sealed record Settings(
        int Runs, TimeSpan Duration, TimeSpan Warmup, double Rate, int Adapters, double ZipfExponent, int Engines, int MaxLoras, double LoadSeconds,
        int AnswerTokens, int Seed, TimeSpan RequestTimeout, string OutputDirectory);

    public sealed record Run(
        string Placement, int Index, int Sent, int Succeeded, int Failed, double RequestsPerSecond, double TtftP50Ms, double TtftP99Ms,
        double AdapterLoads, double LoadsPerMinute, double FailedLoads, double LoadWaits, double EngineRefusals, string Failures, string FirstError);

    public sealed record Row(string Placement, double RequestsPerSecond, double TtftP50Ms, double TtftP99Ms, double LoadsPerMinute, double Failed, IReadOnlyList<Run> Runs);

    public static async Task<IReadOnlyList<Row>> RunAsync(Settings settings, CancellationToken cancellationToken)
    {
        using var adapters = AdapterCatalogue.Create(settings.Adapters);
        var zipf = new ZipfDistribution(settings.Adapters, settings.ZipfExponent);
        // The share of the requests the slots could hold at once (all of them when there are no more adapters than slots).
        var slots = Math.Min(settings.Adapters, settings.Engines * settings.MaxLoras);
        Console.WriteLine($"{settings.Adapters} adapters (Zipf s={settings.ZipfExponent}: the top one gets {zipf.Share(0):P0}, the top {slots} "
            + $"{Enumerable.Range(0, slots).Sum(zipf.Share):P0}), {settings.Engines} engines × --max-loras {settings.MaxLoras}, "
            + $"{settings.Rate} req/s for {settings.Warmup.TotalSeconds} s of warm-up and {settings.Duration.TotalSeconds} s measured, load {settings.LoadSeconds} s");
        var runs = new List<Run>();
        for (var index = 1; index <= settings.Runs; index++)
        {
            // The warm-up's requests come first in the sequence, the measured ones after them.
            var warmupCount = (int)Math.Round(settings.Rate * settings.Warmup.TotalSeconds);
            var all = Enumerable.Range(0, warmupCount + (int)Math.Round(settings.Rate * settings.Duration.TotalSeconds))
                .Select(i => AdapterCatalogue.Name(zipf.Sample(DeterministicRandom.For(settings.Seed, index, i)))).ToArray();
            var (warmup, models) = (all[..warmupCount], all[warmupCount..]);
            // Alternate which placement goes first, so that neither always meets the machine's later state.
            foreach (var placement in index % 2 == 1 ? Placements : Placements.Reverse())
            {
                var run = await OneRunAsync(settings, adapters, placement, index, warmup, models, cancellationToken);
                runs.Add(run);
                Console.WriteLine($"run {index} {placement,-8} {run.Succeeded}/{run.Sent} ok, {run.RequestsPerSecond:F2} req/s, TTFT p50 {run.TtftP50Ms:F0} ms p99 {run.TtftP99Ms:F0} ms, "
                    + $"{run.AdapterLoads:F0} loads ({run.LoadsPerMinute:F0}/min, {run.FailedLoads:F0} failed), {run.LoadWaits:F0} requests waited for a load"
                    + (run.FirstError.Length > 0 ? $"; failed: {run.Failures} ({run.EngineRefusals:F0} refused by an engine); first: {run.FirstError}" : ""));
            }
        }
        var rows = Placements.Select(p => Summarise(p, [.. runs.Where(r => r.Placement == p)])).ToList();
        Console.WriteLine();
        Console.WriteLine("placement  req/s  TTFT p50 ms  TTFT p99 ms  adapter loads/min  failed requests");
        foreach (var row in rows)
        {
            Console.WriteLine($"{row.Placement,-9}  {row.RequestsPerSecond,5:F2}  {row.TtftP50Ms,11:F0}  {row.TtftP99Ms,11:F0}  {row.LoadsPerMinute,17:F0}  {row.Failed,15:F0}");
        }
        Directory.CreateDirectory(settings.OutputDirectory);
        var file = Path.Combine(settings.OutputDirectory, $"lora-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}.json");
        await File.WriteAllTextAsync(file, JsonSerializer.Serialize(new { scenario = "lora", settings, rows },
            new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals }), cancellationToken);
        Console.WriteLine($"written: {file}");
        return rows;
    }

    private static Row Summarise(string placement, IReadOnlyList<Run> runs)
    {
        double Median(Func<Run, double> value) =>
            runs.Select(value).Where(v => !double.IsNaN(v)).Order().ToList() is { Count: > 0 } sorted ? Distribution.Percentile(sorted, 50) : double.NaN;
        return new Row(placement, Median(r => r.RequestsPerSecond), Median(r => r.TtftP50Ms), Median(r => r.TtftP99Ms), Median(r => r.LoadsPerMinute), Median(r => r.Failed), runs);
    }

    private static async Task<Run> OneRunAsync(Settings settings, AdapterCatalogue adapters, string placement, int index, string[] warmup, string[] models,
        CancellationToken cancellationToken)
    {
        var started = new List<ProgramProcess>();
        try
        {
            string[] engineArgs = [Model, "--host", "127.0.0.1", "--port", "0", "--latency-preset", "h100-8b", "--seed", "7",
                "--enable-lora", "--max-loras", settings.MaxLoras.ToString(CultureInfo.InvariantCulture),
                "--lora-load-seconds", settings.LoadSeconds.ToString(CultureInfo.InvariantCulture)];
            var runtimeLora = new Dictionary<string, string> { ["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True" };
            var engines = await Task.WhenAll(Enumerable.Range(0, settings.Engines).Select(_ => ProgramProcess.StartEngineSimAsync(engineArgs, cancellationToken, runtimeLora)));
            started.AddRange(engines);
            var router = await ProgramProcess.StartRouterAsync(["--host", "127.0.0.1", "--port", "0",
                "--static-backends", string.Join(',', engines.Select(e => e.Url)), "--static-models", string.Join(',', engines.Select(_ => Model)),
                "--engine-stats-interval", "0.5", "--lora-adapters-file", adapters.File, "--lora-placement", placement,
                // The engines' slots, which they report only once they have stepped (as vLLM).
                "--max-loras", settings.MaxLoras.ToString(CultureInfo.InvariantCulture)], cancellationToken);
            started.Add(router);
            await RouterEngines.WaitRoutableAsync(router.Url, settings.Engines, cancellationToken);

            using var client = new OpenAiChatClient(new ChatEndpoint(router.Url, Model, null, "x-user-id", settings.AnswerTokens, settings.RequestTimeout));
            ChatTurn Turn(string[] sequence, string phase, int i) => new($"user-{i % 64}", 0,
                [new ChatMessage(ChatMessage.User, $"Run {index} {phase}, request {i.ToString(CultureInfo.InvariantCulture)}: summarise the ticket for {sequence[i]}.")], sequence[i]);
            await OpenLoopLoad.SendAsync(client, settings.Rate, warmup.Length, i => Turn(warmup, "warm-up", i), cancellationToken);
            using var http = new HttpClient { BaseAddress = router.Url, Timeout = TimeSpan.FromSeconds(10) };
            var before = await CountersAsync(http, engines, cancellationToken);
            var answers = await OpenLoopLoad.SendAsync(client, settings.Rate, models.Length, i => Turn(models, "measured", i), cancellationToken);
            var span = OpenLoopLoad.SpanSeconds(answers, settings.Duration);
            var ok = answers.Where(a => a.Record.Succeeded).ToList();
            var ttfts = ok.Select(a => a.Record.TtftMs ?? a.Record.E2eMs).Order().ToList();

            var after = await CountersAsync(http, engines, cancellationToken);
            var (loads, failedLoads, loadWaits, engineRefusals) =
                (after.Loads - before.Loads, after.FailedLoads - before.FailedLoads, after.LoadWaits - before.LoadWaits, after.EngineRefusals - before.EngineRefusals);
            var firstError = answers.FirstOrDefault(a => !a.Record.Succeeded)?.Record is { } failed
                ? $"{failed.ErrorKind} {failed.HttpStatus} {failed.Error}" : "";
            var failures = string.Join(", ", answers.Where(a => !a.Record.Succeeded).GroupBy(a => (a.Record.ErrorKind, a.Record.HttpStatus))
                .OrderByDescending(g => g.Count()).Select(g => $"{g.Key.ErrorKind}{(g.Key.HttpStatus is { } status ? " " + status : "")} ×{g.Count()}"));
            return new Run(placement, index, answers.Count, ok.Count, answers.Count - ok.Count, ok.Count / span,
                ttfts.Count == 0 ? double.NaN : Distribution.Percentile(ttfts, 50), ttfts.Count == 0 ? double.NaN : Distribution.Percentile(ttfts, 99),
                loads, loads / span * 60, failedLoads, loadWaits, engineRefusals, failures, firstError.Length > 300 ? firstError[..300] : firstError);
        }
        finally
        {
            foreach (var process in started)
            {
                await process.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// The router's adapter loads (every reason and outcome; failed ones apart) and requests that waited for a load, and the
    /// chats the engines themselves refused (4xx, e.g. an adapter no longer loaded there: the router's view was stale).
    /// </summary>
    private static async Task<(double Loads, double FailedLoads, double LoadWaits, double EngineRefusals)> CountersAsync(HttpClient router,
        IReadOnlyList<ProgramProcess> engines, CancellationToken cancellationToken)
    {
        var metrics = PrometheusTextParser.Parse(await router.GetStringAsync("metrics", cancellationToken));
        double engineRefusals = 0;
        foreach (var engine in engines)
        {
            using var engineHttp = new HttpClient { BaseAddress = engine.Url, Timeout = TimeSpan.FromSeconds(10) };
            engineRefusals += PrometheusTextParser.Parse(await engineHttp.GetStringAsync("metrics", cancellationToken))
                .Sum("http_requests_total", ("handler", "/v1/chat/completions"), ("status", "4xx"));
        }
        return (metrics.Sum("vllmstack:router_lora_adapter_loads_total"), metrics.Sum("vllmstack:router_lora_adapter_loads_total", ("outcome", "failed")),
            metrics.Sum("vllmstack:router_lora_load_waits_total"), engineRefusals);
    }

    /// <summary>
    /// PEFT adapters on disk as vLLM reads them (<c>adapter_config.json</c> and a weights file, empty: the simulator does
    /// not read weights), and the router's catalogue of them (<c>{"adapters":[{"name","base_model","source"}]}</c>), in a
    /// temporary folder deleted on dispose.
    /// </summary>
    private sealed class AdapterCatalogue : IDisposable
    {
        private AdapterCatalogue(string root) => Root = root;

        public string Root { get; }

        public string File => Path.Combine(Root, "adapters.json");

        public static string Name(int k) => $"adapter-{k:00}";

        public static AdapterCatalogue Create(int count)
        {
            var catalogue = new AdapterCatalogue(Directory.CreateTempSubdirectory("vllmstack-bench-lora-").FullName);
            var entries = new JsonArray();
            for (var k = 0; k < count; k++)
            {
                var directory = Directory.CreateDirectory(Path.Combine(catalogue.Root, Name(k))).FullName;
                System.IO.File.WriteAllText(Path.Combine(directory, "adapter_config.json"),
                    """{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"], "bias": "none"}""");
                System.IO.File.WriteAllBytes(Path.Combine(directory, "adapter_model.safetensors"), []);
                entries.Add(new JsonObject { ["name"] = Name(k), ["base_model"] = Model, ["source"] = directory });
            }
            System.IO.File.WriteAllText(catalogue.File, new JsonObject { ["adapters"] = entries }.ToJsonString());
            return catalogue;
        }

        public void Dispose()
        {
            try
            {
                Directory.Delete(Root, recursive: true);
            }
            catch (IOException)
            {
                // Left in the temp folder; nothing depends on it.
            }
        }
    }
}
