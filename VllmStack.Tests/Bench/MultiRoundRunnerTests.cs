using System.Collections.Concurrent;
using VllmStack.Bench.MultiRound;

namespace VllmStack.Tests.Bench;

public sealed class MultiRoundRunnerTests
{
    /// <summary>Answers every turn after a short pause; every third request of user-1 fails.</summary>
    private sealed class FakeClient : IChatTurnClient
    {
        public ConcurrentQueue<ChatTurn> Turns { get; } = new();

        public async Task<TurnResult> SendAsync(ChatTurn turn, CancellationToken cancellationToken)
        {
            Turns.Enqueue(turn);
            await Task.Delay(2, cancellationToken);
            var fail = turn.UserId == "user-1" && turn.Round == 2;
            var record = new RequestRecord(turn.UserId, turn.Round, DateTimeOffset.UtcNow,
                fail ? RequestErrorKind.HttpStatus : RequestErrorKind.None, fail ? "HTTP 503" : null, fail ? 503 : 200,
                fail ? null : 1.5, 2, fail ? 0 : 2, turn.Messages.Sum(m => m.Content.Length) / 4, 2, null, fail ? [] : [0.5]);
            return new TurnResult(record, fail ? "" : $"answer of {turn.UserId} round {turn.Round}");
        }
    }

    private static MultiRoundSettings Settings(double qps = 0, double seconds = 0.6) => new(
        new Uri("http://127.0.0.1:1"), "m", Users: 3, Rounds: 3, SystemPromptTokens: 50, HistoryTokens: 100, QuestionTokens: 10,
        AnswerTokens: 5, Qps: qps, Duration: TimeSpan.FromSeconds(seconds), SessionHeader: "x-user-id", ApiKey: null, Seed: 1,
        RequestTimeout: TimeSpan.FromSeconds(5), MaxErrorRate: 0.01, OutputDirectory: "unused");

    [Fact]
    public async Task Finished_users_are_replaced_until_the_duration_is_up()
    {
        var client = new FakeClient();
        var run = await new MultiRoundRunner(Settings(), client).RunAsync(CancellationToken.None);

        Assert.True(run.UsersStarted > 3, $"only {run.UsersStarted} users started");
        Assert.True(run.ConversationsCompleted >= 1);
        Assert.False(run.Interrupted);
        Assert.Equal(client.Turns.Count, run.Requests.Count);
        Assert.Equal(run.UsersStarted, run.Requests.Select(r => r.UserId).Distinct().Count());   // a user starts by asking
        // Each user asked its rounds in order, one after the other.
        foreach (var user in run.Requests.GroupBy(r => r.UserId))
        {
            var rounds = user.Select(r => r.Round).ToArray();
            Assert.Equal(Enumerable.Range(1, rounds.Length), rounds);
        }
    }

    [Fact]
    public async Task Answers_join_the_history_and_failed_rounds_do_not()
    {
        var client = new FakeClient();
        await new MultiRoundRunner(Settings(), client).RunAsync(CancellationToken.None);

        var user0 = client.Turns.Where(t => t.UserId == "user-0").OrderBy(t => t.Round).ToArray();
        Assert.Contains(user0[2].Messages, m => m.Content == "answer of user-0 round 2");
        var user1 = client.Turns.Where(t => t.UserId == "user-1").OrderBy(t => t.Round).ToArray();
        Assert.Equal(user1[0].Messages.Count + 2, user1[2].Messages.Count);   // round 2 left no trace
        Assert.DoesNotContain(user1[2].Messages, m => m.Content.Contains("round 2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Pacing_spreads_the_first_requests_over_one_period()
    {
        // 3 seats at 1 req/s: a seat's period is 3 s and the seats start at 0, 1 and 2 s, so within 2.4 s each sends
        // exactly once. (The margins are wide on purpose: a loaded machine must not decide this; SeatScheduleTests
        // check the arithmetic exactly.)
        var client = new FakeClient();
        var run = await new MultiRoundRunner(Settings(qps: 1, seconds: 2.4), client).RunAsync(CancellationToken.None);
        Assert.Equal(3, run.Requests.Count);
        Assert.All(run.Requests, r => Assert.Equal(1, r.Round));
    }

    [Fact]
    public async Task Cancelling_ends_the_run_with_what_finished()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var run = await new MultiRoundRunner(Settings(seconds: 30), new FakeClient()).RunAsync(cancel.Token);
        Assert.True(run.Interrupted);
        Assert.True(run.Elapsed < TimeSpan.FromSeconds(10));
        Assert.NotEmpty(run.Requests);
    }

    [Fact]
    public void The_progress_line_shows_totals_and_the_last_interval_s_rates()
    {
        var display = new ProgressDisplay(new LiveCounters(), TextWriter.Null, interactive: false, TimeSpan.FromSeconds(60));
        var before = new LiveCounters.Snapshot(4, 0, 10, 8, 0, 0, 2, 800, 8_000, 8);
        var now = new LiveCounters.Snapshot(6, 2, 30, 28, 1, 0, 2, 2800, 48_000, 27);
        var line = display.Line(before, now, TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(12));
        Assert.Equal("  12.0/60 s  users 6 started, 2 finished  done 28  errors 1  in flight 2  |  10.0 req/s  1000 tok/s  TTFT 2.1 ms", line);
    }

    [Fact]
    public void Csv_fields_are_quoted_when_they_need_it() =>
        Assert.Equal("a,\"b,c\",\"say \"\"hi\"\"\",\"x\ny\"\r\n", ResultFiles.Row(["a", "b,c", "say \"hi\"", "x\ny"]));
}
