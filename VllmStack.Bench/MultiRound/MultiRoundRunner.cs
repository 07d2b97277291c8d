using System.Collections.Concurrent;
using System.Diagnostics;

namespace VllmStack.Bench.MultiRound;

/// <summary>What a run produced: every finished request in the order they started.</summary>
/// <param name="Elapsed">From the start until the last in-flight request finished.</param>
/// <param name="Abandoned">Requests cut off unfinished because the run was cancelled; not in <paramref name="Requests"/>.</param>
/// <param name="Interrupted">The run was cancelled (Ctrl+C) before its duration was up.</param>
public sealed record RunResult(
    DateTimeOffset StartedAt, TimeSpan Elapsed, IReadOnlyList<RequestRecord> Requests,
    int UsersStarted, int ConversationsCompleted, int Abandoned, bool Interrupted);

/// <summary>
/// The multi-round QA load: <c>Users</c> seats, each running one simulated user's conversation after another
/// (a new user takes the seat of one that finished its rounds) until the duration is up; then no new request
/// starts and the ones in flight are waited for, each bounded by its timeout.
/// </summary>
public sealed class MultiRoundRunner(MultiRoundSettings settings, IChatTurnClient client)
{
    private readonly ConcurrentQueue<RequestRecord> _records = new();
    private readonly ConversationFactory _conversations = new(settings.Shape);
    private readonly SeatSchedule _schedule = new(settings.Users, settings.Qps);
    private int _nextUserNumber = -1;

    public LiveCounters Counters { get; } = new();

    public async Task<RunResult> RunAsync(CancellationToken cancellationToken)
    {
        var startedAt = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        // Two stops: the duration ends the starting of requests; cancellation or the drain limit ends everything.
        using var stopStarting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var stopAll = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        stopStarting.CancelAfter(settings.Duration);
        stopAll.CancelAfter(settings.Duration + settings.DrainLimit);

        var seats = Enumerable.Range(0, settings.Users)
            .Select(seat => Task.Run(() => RunSeatAsync(seat, clock, stopStarting.Token, stopAll.Token), CancellationToken.None))
            .ToArray();
        await Task.WhenAll(seats);

        var requests = _records.OrderBy(r => r.StartedAt).ToArray();
        var totals = Counters.Read();
        return new RunResult(startedAt, clock.Elapsed, requests, (int)totals.UsersStarted, (int)totals.ConversationsCompleted,
            (int)totals.Abandoned, cancellationToken.IsCancellationRequested);
    }

    private async Task RunSeatAsync(int seat, Stopwatch clock, CancellationToken stopStarting, CancellationToken stopAll)
    {
        var due = _schedule.FirstDue(seat);
        Conversation? conversation = null;
        // Bounded by the duration: once stopStarting fires no request is sent and no user starts.
        while (await WaitUntilAsync(clock, due, stopStarting))
        {
            // A user starts with its first request, so users that would never send are not counted.
            conversation ??= StartConversation();
            var turn = conversation.Ask();
            var sent = clock.Elapsed;
            Counters.Sent();
            TurnResult result;
            try
            {
                result = await client.SendAsync(turn, stopAll);
            }
            catch (OperationCanceledException) when (stopAll.IsCancellationRequested)
            {
                Counters.Abandoned();
                return;
            }
            _records.Enqueue(result.Record);
            Counters.Completed(result.Record);
            if (result.Record.Succeeded)
            {
                conversation.Answer(result.Answer);
            }
            else
            {
                conversation.GiveUpRound();
            }
            due = _schedule.NextDue(sent);
            if (conversation.IsFinished)
            {
                // The next user takes this seat and its schedule.
                Counters.ConversationCompleted();
                conversation = null;
            }
        }
    }

    private Conversation StartConversation()
    {
        Counters.UserStarted();
        return _conversations.Create(Interlocked.Increment(ref _nextUserNumber));
    }

    /// <summary>Waits for the seat's next slot; false when the run stops starting requests first.</summary>
    private static async Task<bool> WaitUntilAsync(Stopwatch clock, TimeSpan due, CancellationToken stopStarting)
    {
        var wait = due - clock.Elapsed;
        if (wait > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(wait, stopStarting);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
        return !stopStarting.IsCancellationRequested;
    }
}
