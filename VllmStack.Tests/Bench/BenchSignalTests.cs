using System.Diagnostics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Bench;

/// <summary>A benchmark run as a user runs it, stopped by a signal part-way: the engines and router it started must go too.</summary>
public sealed class BenchSignalTests
{
    [Fact]
    public async Task A_benchmark_stopped_by_sigterm_leaves_none_of_the_programs_it_started_running()
    {
        var output = Directory.CreateTempSubdirectory("vllmstack-bench-signal-").FullName;
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[] { RepoPaths.ProgramDll("VllmStack.Bench"), "lora", "--runs", "1", "--warmup", "120", "--duration", "120", "--adapters", "4", "--output", output })
        {
            info.ArgumentList.Add(arg);
        }
        using var bench = Process.Start(info)!;
        bench.OutputDataReceived += (_, _) => { };
        bench.ErrorDataReceived += (_, _) => { };
        bench.BeginOutputReadLine();
        bench.BeginErrorReadLine();
        HashSet<int> started = [];
        try
        {
            // Four engines and a router, once the router is up (the scenario then sends its load for minutes).
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(90) && !started.Any(p => ProcessTree.CommandLine(p).Contains("VllmStack.Router.dll", StringComparison.Ordinal)))
            {
                await Task.Delay(250);
                started = ProcessTree.Of(bench.Id);
            }
            Assert.Contains(started, p => ProcessTree.CommandLine(p).Contains("VllmStack.Router.dll", StringComparison.Ordinal));
            await Task.Delay(TimeSpan.FromSeconds(2)); // the load is under way
            started = ProcessTree.Of(bench.Id);

            using (var kill = Process.Start("kill", ["-TERM", bench.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync();
            }
            await bench.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            var left = await ProcessTree.WaitForExitAsync(started, TimeSpan.FromSeconds(10));
            Assert.True(left.Count == 0, $"still running after the benchmark stopped: {ProcessTree.Describe(left)}");
        }
        finally
        {
            foreach (var pid in started.Append(bench.Id).Where(ProcessTree.IsAlive))
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
            }
            Directory.Delete(output, recursive: true);
        }
    }
}
