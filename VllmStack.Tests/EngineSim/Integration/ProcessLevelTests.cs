using System.Diagnostics;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.EngineSim.Integration;

/// <summary>The simulator as a program: its command line, and its exposition checked by Prometheus's own promtool.</summary>
public sealed class ProcessLevelTests
{
    [Theory]
    [InlineData("--num-gpu-blocks 4 --max-model-len 4096", "cannot hold one sequence")]
    [InlineData("--latency-preset warp-speed", "--latency-preset 'warp-speed' is unknown")]
    [InlineData("--port nope", "nope")]
    [InlineData("", "a model is required")]
    public async Task Refuses_to_start_with_a_clear_message(string args, string expected)
    {
        var (exitCode, output) = await EngineSimProcess.RunToExitAsync(
            [.. args.Split(' ', StringSplitOptions.RemoveEmptyEntries), .. (args.Length == 0 ? Array.Empty<string>() : ["some-model"])],
            TimeSpan.FromSeconds(30));
        Assert.NotEqual(0, exitCode);
        Assert.Contains(expected, output);
    }

    [Fact]
    public async Task Help_lists_the_vllm_flags()
    {
        var (exitCode, output) = await EngineSimProcess.RunToExitAsync(["--help"], TimeSpan.FromSeconds(30));
        Assert.Equal(0, exitCode);
        foreach (var flag in new[] { "--max-num-seqs", "--num-gpu-blocks", "--enable-lora", "--lora-modules", "--api-key", "--latency-preset", "--failure-rate" })
        {
            Assert.Contains(flag, output);
        }
    }

    [Fact]
    public async Task Promtool_parses_the_exposition_and_finds_only_known_lint()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        using (var response = await sim.Http.PostAsync("v1/completions",
            new StringContent("""{"prompt":"scrape me","max_tokens":4,"stream":true}""", System.Text.Encoding.UTF8, "application/json")))
        {
            await response.Content.ReadAsStringAsync();
        }
        var exposition = await sim.MetricsTextAsync();

        var info = new ProcessStartInfo("promtool") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add("check");
        info.ArgumentList.Add("metrics");
        using var promtool = Process.Start(info) ?? throw new InvalidOperationException("promtool (Debian package prometheus) is required: .ci/run installs it.");
        var stdout = promtool.StandardOutput.ReadToEndAsync();
        var stderr = promtool.StandardError.ReadToEndAsync();
        await promtool.StandardInput.WriteAsync(exposition);
        promtool.StandardInput.Close();
        await promtool.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var report = await stdout + await stderr;

        // Exit 0: clean; 3: lint findings only. Anything else (1) means the text did not parse.
        Assert.True(promtool.ExitCode is 0 or 3, $"promtool exit {promtool.ExitCode}:\n{report}");
        var findings = report.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.All(findings, line => Assert.True(
            line.EndsWith("metric names should not contain ':'", StringComparison.Ordinal)          // vLLM's own naming
            || line.EndsWith("should not have \"_count\" suffix", StringComparison.Ordinal),        // .NET runtime gauges such as dotnet_process_cpu_count
            "unexpected promtool finding: " + line));
        Assert.Contains("vllm:num_requests_running", exposition);
    }
}

/// <summary>Older vLLM metric names, which scrapers (router, autoscaler) must also understand.</summary>
public sealed class LegacyMetricNamesTests
{
    [Fact]
    public async Task V0_names_replace_the_v1_ones_and_carry_the_same_values()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--metric-names", "v0"]);
        var prompt = string.Join(' ', Enumerable.Repeat("repeated words here", 40));
        for (var i = 0; i < 2; i++)
        {
            using var response = await sim.Http.PostAsync("v1/completions",
                new StringContent($$"""{"prompt":"{{prompt}}","max_tokens":2}""", System.Text.Encoding.UTF8, "application/json"));
            response.EnsureSuccessStatusCode();
        }

        var metrics = await sim.MetricsAsync();
        Assert.True(VllmStack.ServiceDefaults.Metrics.PrometheusSampleExtensions.Sum(metrics, "vllm:gpu_prefix_cache_hits_total") > 0);
        Assert.True(VllmStack.ServiceDefaults.Metrics.PrometheusSampleExtensions.Contains(metrics, "vllm:gpu_cache_usage_perc"));
        Assert.False(VllmStack.ServiceDefaults.Metrics.PrometheusSampleExtensions.Contains(metrics, "vllm:kv_cache_usage_perc"));
        Assert.False(VllmStack.ServiceDefaults.Metrics.PrometheusSampleExtensions.Contains(metrics, "vllm:prefix_cache_hits_total"));
    }
}
