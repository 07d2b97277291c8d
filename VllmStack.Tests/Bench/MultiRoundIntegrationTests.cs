using System.Text.Json;
using VllmStack.Bench.MultiRound;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Bench;

/// <summary>The load generator against real EngineSim processes (fast preset). Nothing here asserts on speed.</summary>
public sealed class MultiRoundIntegrationTests
{
    private static MultiRoundSettings Settings(Uri url, string output) => new(
        url, Model: null, Users: 4, Rounds: 3, SystemPromptTokens: 300, HistoryTokens: 400, QuestionTokens: 30,
        AnswerTokens: 16, Qps: 40, Duration: TimeSpan.FromSeconds(3), SessionHeader: "x-user-id", ApiKey: null, Seed: 3,
        RequestTimeout: TimeSpan.FromSeconds(30), MaxErrorRate: 0.01, OutputDirectory: output);

    [Fact]
    public async Task Four_users_converse_for_three_seconds_without_errors_and_prompts_grow_by_round()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast", "--enable-prompt-tokens-details"]);
        var settings = Settings(sim.BaseUrl, "unused") with { Model = EngineSimProcess.DefaultModel };
        using var client = new OpenAiChatClient(new ChatEndpoint(settings.Url, settings.Model!, null, settings.SessionHeader, settings.AnswerTokens, settings.RequestTimeout));

        var run = await new MultiRoundRunner(settings, client).RunAsync(CancellationToken.None);
        var summary = RunSummary.Of(run);

        Assert.True(summary.Requests >= 8, $"only {summary.Requests} requests completed");
        Assert.True(summary.Errors == 0, string.Join("\n", run.Requests.Where(r => !r.Succeeded).Select(r => $"{r.ErrorKind}: {r.Error}")));
        Assert.All(run.Requests, r => Assert.True(r.TtftMs > 0));
        Assert.All(run.Requests, r => Assert.Equal(settings.AnswerTokens, r.CompletionTokens));
        Assert.True(summary.ItlMs.Count > 0);
        var first = summary.Rounds.Single(r => r.Round == 1);
        var later = summary.Rounds.Where(r => r.Round > 1).ToArray();
        Assert.NotEmpty(later);
        Assert.All(later, r => Assert.True(r.MeanPromptTokens > first.MeanPromptTokens,
            $"round {r.Round}: {r.MeanPromptTokens} prompt tokens, round 1: {first.MeanPromptTokens}"));
        // The shared system prompt is cached from the second user on, the growing history from the second round on.
        Assert.True(summary.CachedPromptTokens > 0);
        Assert.True(later[0].MeanCachedPromptTokens > first.MeanCachedPromptTokens);
    }

    [Fact]
    public async Task The_command_finds_the_model_writes_json_and_csv_and_exits_zero()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast"]);
        var output = Directory.CreateTempSubdirectory("multiround-").FullName;
        try
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            var code = await MultiRoundBenchmark.RunAsync(Settings(sim.BaseUrl, output) with { Duration = TimeSpan.FromSeconds(2) }, stdout, stderr, interactive: false, CancellationToken.None);

            Assert.True(code == 0, stdout + "\n" + stderr);
            Assert.Contains("TTFT (ms)", stdout.ToString());
            var json = Assert.Single(Directory.GetFiles(output, "multiround-*.json"));
            using var report = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            Assert.Equal(EngineSimProcess.DefaultModel, report.RootElement.GetProperty("model").GetString());
            var requests = report.RootElement.GetProperty("summary").GetProperty("requests").GetInt32();
            Assert.True(requests > 0);
            Assert.Equal(requests + 1, (await File.ReadAllLinesAsync(Assert.Single(Directory.GetFiles(output, "*-requests.csv")))).Length);
            Assert.Equal(2, (await File.ReadAllLinesAsync(Assert.Single(Directory.GetFiles(output, "*-summary.csv")))).Length);
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public async Task Failing_requests_are_counted_and_the_exit_code_says_so()
    {
        await using var sim = await EngineSimProcess.StartAsync(["--latency-preset", "fast", "--failure-rate", "0.5", "--failure-types", "server_error"]);
        var output = Directory.CreateTempSubdirectory("multiround-").FullName;
        try
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            var settings = Settings(sim.BaseUrl, output) with { Model = EngineSimProcess.DefaultModel, Duration = TimeSpan.FromSeconds(1.5) };
            var code = await MultiRoundBenchmark.RunAsync(settings, stdout, stderr, interactive: false, CancellationToken.None);

            Assert.Equal(MultiRoundBenchmark.TooManyErrors, code);
            Assert.Contains("exceeds --max-error-rate", stderr.ToString());
            Assert.Contains("HttpStatus", stdout.ToString());
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }
}
