using VllmStack.Bench.MultiRound;

namespace VllmStack.Tests.Bench;

public sealed class RunSummaryTests
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static RequestRecord Ok(string user, int round, double ttft, double[] itl, int prompt, int completion, int? cached) =>
        new(user, round, Start.AddSeconds(round), RequestErrorKind.None, null, 200, ttft, ttft + itl.Sum(), itl.Length + 1, prompt, completion, cached, itl);

    private static RequestRecord Failed(string user, int round, RequestErrorKind kind) =>
        new(user, round, Start.AddSeconds(round), kind, "boom", kind == RequestErrorKind.HttpStatus ? 503 : null, null, 5, 0, null, null, null, []);

    private static RunResult Run(params RequestRecord[] records) => new(Start, TimeSpan.FromSeconds(2), records, 2, 1, 0, false);

    [Fact]
    public void Rates_divide_successful_work_by_the_elapsed_time()
    {
        var s = RunSummary.Of(Run(
            Ok("user-0", 1, 10, [1, 2, 3], prompt: 100, completion: 4, cached: 20),
            Ok("user-0", 2, 30, [5], prompt: 300, completion: 2, cached: 180),
            Failed("user-1", 1, RequestErrorKind.HttpStatus)));

        Assert.Equal(3, s.Requests);
        Assert.Equal(2, s.Succeeded);
        Assert.Equal(1, s.Errors);
        Assert.Equal(1 / 3.0, s.ErrorRate, 9);
        Assert.Equal(new Dictionary<string, int> { ["HttpStatus"] = 1 }, s.ErrorsByKind);
        Assert.Equal(1.0, s.RequestsPerSecond, 9);          // 2 successes in 2 s
        Assert.Equal(3.0, s.OutputTokensPerSecond, 9);      // (4 + 2) / 2
        Assert.Equal(200.0, s.PromptTokensPerSecond, 9);    // (100 + 300) / 2
        Assert.Equal(200, s.CachedPromptTokens);
        Assert.Equal(0.5, s.CachedPromptShare!.Value, 9);
    }

    [Fact]
    public void Latencies_come_from_successes_and_inter_token_gaps_are_pooled()
    {
        var s = RunSummary.Of(Run(
            Ok("user-0", 1, 10, [1, 2, 3], 100, 4, null),
            Ok("user-0", 2, 30, [5], 300, 2, null),
            Failed("user-1", 1, RequestErrorKind.Timeout)));

        Assert.Equal(2, s.TtftMs.Count);
        Assert.Equal(20, s.TtftMs.Mean, 9);
        Assert.Equal(28, s.TtftMs.P90, 9);
        Assert.Equal(29.8, s.TtftMs.P99, 9);
        Assert.Equal(30, s.TtftMs.Max);
        Assert.Equal(4, s.ItlMs.Count);                     // every gap of every request, not per-request means
        Assert.Equal(2.75, s.ItlMs.Mean, 9);
        Assert.Equal(2.5, s.ItlMs.P50, 9);
        Assert.Equal(2, s.E2eMs.Count);
        Assert.Null(s.CachedPromptTokens);
        Assert.Null(s.CachedPromptShare);
    }

    [Fact]
    public void Rounds_show_the_growing_prompt()
    {
        var s = RunSummary.Of(Run(
            Ok("user-0", 1, 10, [1], 100, 2, 0),
            Ok("user-1", 1, 20, [1], 110, 2, 50),
            Ok("user-0", 2, 15, [1], 300, 2, 200),
            Failed("user-1", 2, RequestErrorKind.BrokenStream)));

        Assert.Equal([1, 2], s.Rounds.Select(r => r.Round));
        Assert.Equal(2, s.Rounds[0].Requests);
        Assert.Equal(105, s.Rounds[0].MeanPromptTokens, 9);
        Assert.Equal(25, s.Rounds[0].MeanCachedPromptTokens!.Value, 9);
        Assert.Equal(15, s.Rounds[0].TtftMs.P50, 9);
        Assert.Equal(1, s.Rounds[1].Errors);
        Assert.Equal(300, s.Rounds[1].MeanPromptTokens, 9);
    }

    [Fact]
    public void A_usage_less_answer_counts_its_content_chunks_as_tokens()
    {
        var noUsage = Ok("user-0", 1, 10, [1, 1], 0, 0, null) with { PromptTokens = null, CompletionTokens = null };
        Assert.Equal(3, RunSummary.Of(Run(noUsage)).CompletionTokens);
    }

    [Fact]
    public void Passing_needs_a_success_and_an_error_rate_within_the_limit()
    {
        Assert.False(RunSummary.Of(Run()).Passes(0.01));
        Assert.False(RunSummary.Of(Run(Failed("user-0", 1, RequestErrorKind.Connection))).Passes(0.5));
        var oneInThree = RunSummary.Of(Run(Ok("u", 1, 1, [], 1, 1, null), Ok("u", 2, 1, [], 1, 1, null), Failed("u", 3, RequestErrorKind.ErrorFrame)));
        Assert.True(oneInThree.Passes(0.34));
        Assert.False(oneInThree.Passes(0.33));
    }
}
