using System.Diagnostics;
using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.Tests.Infrastructure;

/// <summary>
/// A real EngineSim process on a free loopback port. Start waits (bounded) for its "listening on" line;
/// dispose kills it by its own process id and waits for it to exit.
/// </summary>
public sealed class EngineSimProcess : IAsyncDisposable
{
    public const string DefaultModel = "test-org/test-model-8b";

    private readonly ProgramProcess _program;

    private EngineSimProcess(ProgramProcess program)
    {
        _program = program;
        Http = new HttpClient { BaseAddress = program.BaseUrl, Timeout = TimeSpan.FromSeconds(60) };
    }

    public Uri BaseUrl => _program.BaseUrl;

    public HttpClient Http { get; }

    public int ProcessId => _program.ProcessId;

    public bool HasExited => _program.HasExited;

    public string Output => _program.Output;

    /// <summary>Starts on <paramref name="port"/> (0: a free one) and completes once the engine says it listens.</summary>
    public static async Task<EngineSimProcess> StartAsync(
        IEnumerable<string>? args = null, IDictionary<string, string>? environment = null, string model = DefaultModel, TimeSpan? startTimeout = null, int port = 0) =>
        new(await ProgramProcess.StartAsync("VllmStack.EngineSim", "EngineSim",
            [model, "--host", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), .. args ?? []], environment, startTimeout));

    /// <summary>Sends a signal to the engine's own process (<c>KILL</c>, <c>STOP</c>, <c>CONT</c>) without waiting for it to exit.</summary>
    public Task SignalAsync(string signal) => _program.SignalAsync(signal, TimeSpan.Zero);

    /// <summary>Kills the engine at once, as a crash would.</summary>
    public void Kill() => _program.Kill();

    /// <summary>Runs the simulator to completion with arguments that should make it refuse to start.</summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(IEnumerable<string> args, TimeSpan timeout)
    {
        var run = await ProgramProcess.RunToExitAsync("dotnet", [RepoPaths.ProgramDll("VllmStack.EngineSim"), .. args], timeout);
        return (run.ExitCode, run.Output);
    }

    public async Task<IReadOnlyList<PrometheusSample>> MetricsAsync(CancellationToken cancellationToken = default) =>
        PrometheusTextParser.Parse(await Http.GetStringAsync("metrics", cancellationToken));

    public Task<string> MetricsTextAsync(CancellationToken cancellationToken = default) => Http.GetStringAsync("metrics", cancellationToken);

    /// <summary>Polls the metrics until <paramref name="condition"/> holds; fails with the last scrape when time runs out.</summary>
    public async Task<IReadOnlyList<PrometheusSample>> WaitForMetricsAsync(Func<IReadOnlyList<PrometheusSample>, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.StartNew();
        IReadOnlyList<PrometheusSample> samples = [];
        while (deadline.Elapsed < timeout)
        {
            samples = await MetricsAsync();
            if (condition(samples))
            {
                return samples;
            }
            await Task.Delay(20);
        }
        throw new TimeoutException($"Metrics never showed {what} within {timeout}. Last scrape:\n" +
            string.Join('\n', samples.Where(s => s.Name.StartsWith("vllm:", StringComparison.Ordinal)).Select(s => $"{s.Name} {string.Join(',', s.Labels.Select(l => $"{l.Key}={l.Value}"))} {s.Value}")));
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _program.DisposeAsync();
    }
}
