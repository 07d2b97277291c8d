using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.Tests.Infrastructure;

/// <summary>
/// A real EngineSim process on a free loopback port. Start waits (bounded) for its "listening on" line;
/// dispose kills it by its own process id and waits for it to exit.
/// </summary>
public sealed partial class EngineSimProcess : IAsyncDisposable
{
    public const string DefaultModel = "test-org/test-model-8b";

    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private EngineSimProcess(Process process, Uri baseUrl)
    {
        _process = process;
        BaseUrl = baseUrl;
        Http = new HttpClient { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(60) };
    }

    public Uri BaseUrl { get; }

    public HttpClient Http { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static async Task<EngineSimProcess> StartAsync(
        IEnumerable<string>? args = null, IDictionary<string, string>? environment = null, string model = DefaultModel, TimeSpan? startTimeout = null)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(RepoPaths.ProgramDll("VllmStack.EngineSim"));
        info.ArgumentList.Add(model);
        info.ArgumentList.Add("--host");
        info.ArgumentList.Add("127.0.0.1");
        info.ArgumentList.Add("--port");
        info.ArgumentList.Add("0");
        foreach (var arg in args ?? [])
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        var output = new StringBuilder();
        var ready = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"EngineSim exited with code {SafeExitCode(process)} before it was ready:\n{Snapshot()}"));
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            var url = await ready.Task.WaitAsync(startTimeout ?? TimeSpan.FromSeconds(30));
            var sim = new EngineSimProcess(process, url);
            lock (output)
            {
                sim._output.Append(output);
            }
            process.OutputDataReceived += (_, e) => sim.Append(e.Data);
            process.ErrorDataReceived += (_, e) => sim.Append(e.Data);
            return sim;
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            Kill(process);
            throw new InvalidOperationException($"EngineSim did not become ready: {e.Message}\n{Snapshot()}", e);
        }

        void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }
            lock (output)
            {
                output.AppendLine(line);
            }
            if (ListeningLine().Match(line) is { Success: true } match)
            {
                ready.TrySetResult(new Uri(match.Groups[1].Value.TrimEnd('/') + "/"));
            }
        }

        string Snapshot()
        {
            lock (output)
            {
                return output.ToString();
            }
        }
    }

    /// <summary>Runs the simulator to completion with arguments that should make it refuse to start.</summary>
    public static async Task<(int ExitCode, string Output)> RunToExitAsync(IEnumerable<string> args, TimeSpan timeout)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(RepoPaths.ProgramDll("VllmStack.EngineSim"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            throw new TimeoutException("EngineSim did not exit within " + timeout);
        }
        return (process.ExitCode, await stdout + await stderr);
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
        Kill(_process);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            // Killed and still not gone after 10 s: nothing more a test can do.
        }
        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    private static string SafeExitCode(Process process)
    {
        try
        {
            return process.ExitCode.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (InvalidOperationException)
        {
            return "?";
        }
    }

    [GeneratedRegex(@"EngineSim listening on (\S+)")]
    private static partial Regex ListeningLine();
}
