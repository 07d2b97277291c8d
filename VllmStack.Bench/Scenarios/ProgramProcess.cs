using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Reflection;
using System.Text.RegularExpressions;

namespace VllmStack.Bench.Scenarios;

/// <summary>A built program of this repository, started as <c>dotnet X.dll</c> and stopped by its own process id.</summary>
public sealed partial class ProgramProcess : IAsyncDisposable
{
    /// <summary>Programs started and not yet stopped, by process id.</summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, Process> Running = new();

    /// <summary>
    /// A benchmark stopped by a signal (Ctrl+C, SIGTERM) may exit before its scenario's own cleanup has run (System.CommandLine
    /// waits only 2 s for the action): the programs it started are killed, by their ids, when the signal arrives.
    /// </summary>
    private static readonly PosixSignalRegistration[] SignalCleanup =
        [.. new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGQUIT }.Select(signal => PosixSignalRegistration.Create(signal, _ => KillAll()))];

    private readonly Process _process;

    private static void KillAll()
    {
        foreach (var process in Running.Values)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }
        }
    }

    private ProgramProcess(Process process, Uri url)
    {
        _process = process;
        Url = url;
    }

    public Uri Url { get; }

    /// <param name="environment">Variables the engine reads as vLLM does (e.g. <c>VLLM_ALLOW_RUNTIME_LORA_UPDATING</c>).</param>
    public static Task<ProgramProcess> StartEngineSimAsync(IEnumerable<string> args, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string>? environment = null) =>
        StartAsync("VllmStack.EngineSim", "EngineSim", args, cancellationToken, environment);

    /// <param name="dll">Another build of the router (a baseline to compare with); this repository's build when null.</param>
    public static Task<ProgramProcess> StartRouterAsync(IEnumerable<string> args, CancellationToken cancellationToken, string? dll = null) =>
        StartAsync("VllmStack.Router", "Router", args, cancellationToken, dll: dll);

    public static Task<ProgramProcess> StartCacheServerAsync(string redisEndpoint, CancellationToken cancellationToken) =>
        StartAsync("VllmStack.CacheServer", "CacheServer", ["--urls", "http://127.0.0.1:0"], cancellationToken,
            new Dictionary<string, string> { ["ConnectionStrings__cache"] = redisEndpoint });

    private static async Task<ProgramProcess> StartAsync(string project, string readyName, IEnumerable<string> args, CancellationToken cancellationToken,
        IReadOnlyDictionary<string, string>? environment = null, string? dll = null)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(dll is null ? ProgramDll(project) : Path.GetFullPath(dll));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["Logging__LogLevel__Default"] = "Warning";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        var process = Process.Start(info) ?? throw new InvalidOperationException("dotnet did not start");
        GC.KeepAlive(SignalCleanup);
        Running[process.Id] = process;
        var ready = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null && Listening().Match(e.Data) is { Success: true } m && m.Groups[1].Value == readyName)
            {
                ready.TrySetResult(new Uri(m.Groups[2].Value));
            }
        };
        process.ErrorDataReceived += (_, _) => { };
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"{project} exited before it was ready"));
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            return new ProgramProcess(process, await ready.Task.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken));
        }
        catch
        {
            process.Kill(entireProcessTree: true);
            Running.TryRemove(process.Id, out _);
            throw;
        }
    }

    /// <summary>SIGKILL to the program's own process id, as a crashed pod dies (its sockets close at once).</summary>
    public void Kill() => _process.Kill();

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Running.TryRemove(_process.Id, out _);
        _process.Dispose();
    }

    private static string ProgramDll(string project)
    {
        var configuration = typeof(ProgramProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, project, "bin", configuration, "net10.0", project + ".dll");
            if (File.Exists(path))
            {
                return path;
            }
        }
        throw new FileNotFoundException($"{project}.dll ({configuration}) not found: build the solution first.");
    }

    [GeneratedRegex(@"^(EngineSim|Router|CacheServer) listening on (\S+)")]
    private static partial Regex Listening();
}
