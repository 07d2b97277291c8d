using System.Diagnostics;
using VllmStack.ServiceDefaults.Metrics;
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
        // Every family EngineSim can expose: the hidden ones, LoRA's info gauge, the HTTP summaries.
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--enable-lora", "--show-hidden-metrics-for-version", "0.10"]);
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
            || line == "vllm:iteration_tokens_total non-counter metrics should not have \"_total\" suffix" // vLLM's own name for a histogram
            || line.EndsWith("should not have \"_count\" suffix", StringComparison.Ordinal),        // .NET runtime gauges such as dotnet_process_cpu_count
            "unexpected promtool finding: " + line));
        Assert.Contains("vllm:num_requests_running", exposition);
        Assert.Contains("vllm:lora_requests_info{", exposition);
        Assert.Contains("# TYPE http_request_size_bytes summary", exposition);
    }
}

/// <summary>
/// Older vLLM metric names, which scrapers (router, autoscaler) must also understand: vLLM 0.11 hides the names it
/// deprecated in 0.9.2 unless <c>--show-hidden-metrics-for-version 0.10</c> shows them again beside the new ones.
/// </summary>
public sealed class HiddenMetricsTests
{
    [Fact]
    public async Task The_previous_minor_version_shows_the_deprecated_names_beside_the_new_ones_with_the_same_values()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "instant", "--show-hidden-metrics-for-version", "0.10"]);
        var prompt = string.Join(' ', Enumerable.Repeat("repeated words here", 40));
        for (var i = 0; i < 2; i++)
        {
            using var response = await sim.Http.PostAsync("v1/completions",
                new StringContent($$"""{"prompt":"{{prompt}}","max_tokens":2}""", System.Text.Encoding.UTF8, "application/json"));
            response.EnsureSuccessStatusCode();
        }

        var metrics = await sim.MetricsAsync();
        var hits = metrics.Sum("vllm:prefix_cache_hits_total");
        Assert.True(hits > 0);
        Assert.Equal(hits, metrics.Sum("vllm:gpu_prefix_cache_hits_total"));
        Assert.Equal(metrics.Sum("vllm:prefix_cache_queries_total"), metrics.Sum("vllm:gpu_prefix_cache_queries_total"));
        Assert.True(metrics.Contains("vllm:gpu_cache_usage_perc"));
        Assert.True(metrics.Contains("vllm:kv_cache_usage_perc"));
        Assert.Contains("DEPRECATED: Use vllm:kv_cache_usage_perc instead.", await sim.MetricsTextAsync());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("0.9")]
    [InlineData("0.10.0")]
    public async Task Without_the_previous_minor_version_only_the_new_names_are_exposed(string? version)
    {
        await using var sim = await EngineSimProcess.StartAsync(
            ["--latency-preset", "instant", .. version is null ? Array.Empty<string>() : ["--show-hidden-metrics-for-version", version]]);
        var metrics = await sim.MetricsAsync();
        Assert.True(metrics.Contains("vllm:kv_cache_usage_perc"));
        Assert.DoesNotContain(metrics, s => s.Name.StartsWith("vllm:gpu_", StringComparison.Ordinal));
    }
}
