using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace VllmStack.Tests.Infrastructure;

/// <summary>
/// One of this repository's built programs, started as <c>dotnet X.dll</c>. Start waits (bounded) for the
/// program's "NAME listening on URL" line; dispose kills it by its own process id and waits for it to exit.
/// </summary>
public sealed class ProgramProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output;

    private ProgramProcess(Process process, Uri baseUrl, StringBuilder output)
    {
        _process = process;
        BaseUrl = baseUrl;
        _output = output;
    }

    public Uri BaseUrl { get; }

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

    public static Task<ProgramProcess> StartAsync(string project, string readyName, IEnumerable<string> args,
        IDictionary<string, string>? environment = null, TimeSpan? startTimeout = null) =>
        StartAsync(project, new Regex(Regex.Escape(readyName) + @" listening on (\S+)"), args, environment, startTimeout);

    /// <summary>Starts a program and waits for a line matching <paramref name="readyLine"/>, whose first group is the URL.</summary>
    public static async Task<ProgramProcess> StartAsync(string project, Regex readyLine, IEnumerable<string> args,
        IDictionary<string, string>? environment = null, TimeSpan? startTimeout = null)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(RepoPaths.ProgramDll(project));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        // Nothing of the test runner's own environment should leak into telemetry or URLs.
        foreach (var key in new[] { "OTEL_EXPORTER_OTLP_ENDPOINT", "ASPNETCORE_URLS", "HTTP_PORTS", "ASPNETCORE_HTTP_PORTS" })
        {
            info.Environment.Remove(key);
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start.");
        var output = new StringBuilder();
        var ready = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var pattern = readyLine;
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
            if (pattern.Match(line) is { Success: true } match)
            {
                ready.TrySetResult(new Uri(match.Groups[1].Value.TrimEnd('/') + "/"));
            }
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) =>
        {
            // Let the output readers drain first, so the reason the program gave is in the message.
            process.WaitForExit();
            ready.TrySetException(new InvalidOperationException($"{project} exited with code {process.ExitCode} before it was ready."));
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var url = await ready.Task.WaitAsync(startTimeout ?? TimeSpan.FromSeconds(30));
            return new ProgramProcess(process, url, output);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            Kill(process);
            string text;
            lock (output)
            {
                text = output.ToString();
            }
            throw new InvalidOperationException($"{project} did not become ready: {e.Message}\n{text}", e);
        }
    }

    /// <summary>Asks the program to stop as a supervisor would (SIGTERM) and waits for it to exit.</summary>
    public Task<bool> TerminateAsync(TimeSpan timeout) => SignalAsync("TERM", timeout);

    /// <summary>
    /// Sends a signal (<c>TERM</c>, <c>INT</c> as Ctrl-C does, <c>KILL</c>) to the program alone — not its children — and
    /// waits at most <paramref name="timeout"/> for it to exit; whether it did.
    /// </summary>
    public async Task<bool> SignalAsync(string signal, TimeSpan timeout)
    {
        if (_process.HasExited)
        {
            return true;
        }
        using (var kill = Process.Start("kill", [$"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Runs a command to completion, reading its output as it comes (a full pipe never blocks it). Past
    /// <paramref name="timeout"/>, or on cancellation, it is killed by its own id (with its children).
    /// </summary>
    public static async Task<CommandRun> RunToExitAsync(string fileName, IEnumerable<string> args, TimeSpan timeout,
        string? workingDirectory = null, CancellationToken cancellationToken = default)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (workingDirectory is not null)
        {
            info.WorkingDirectory = workingDirectory;
        }
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"{fileName} did not start.");
        // The readers get no token: they end when the pipes close, which killing the process ensures.
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException($"{fileName} {string.Join(' ', info.ArgumentList)} did not exit within {timeout}; killed it.\n{await stderr}");
        }
        return new CommandRun(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Kills the program at once, as a crash would (no graceful shutdown).</summary>
    public void Kill() => Kill(_process);

    public async ValueTask DisposeAsync()
    {
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

    internal static void Kill(Process process)
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
}

/// <summary>How a command run to completion ended.</summary>
public sealed record CommandRun(int ExitCode, string StandardOutput, string StandardError)
{
    /// <summary>Standard output, then standard error.</summary>
    public string Output => StandardOutput + StandardError;
}
