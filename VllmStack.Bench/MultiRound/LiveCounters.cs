namespace VllmStack.Bench.MultiRound;

/// <summary>Running totals of a run, updated by the user loops and read by the progress display.</summary>
public sealed class LiveCounters
{
    private long _usersStarted;
    private long _conversationsCompleted;
    private long _sent;
    private long _completed;
    private long _failed;
    private long _abandoned;
    private long _completionTokens;
    private long _ttftMicroseconds;
    private long _ttftCount;

    public readonly record struct Snapshot(
        long UsersStarted, long ConversationsCompleted, long Sent, long Completed, long Failed, long Abandoned, long InFlight,
        long CompletionTokens, long TtftMicroseconds, long TtftCount);

    internal void UserStarted() => Interlocked.Increment(ref _usersStarted);

    internal void ConversationCompleted() => Interlocked.Increment(ref _conversationsCompleted);

    internal void Sent() => Interlocked.Increment(ref _sent);

    internal void Abandoned() => Interlocked.Increment(ref _abandoned);

    internal void Completed(RequestRecord record)
    {
        if (record.Succeeded)
        {
            Interlocked.Add(ref _completionTokens, record.CompletionTokens ?? record.ContentChunks);
            if (record.TtftMs is { } ttft)
            {
                Interlocked.Add(ref _ttftMicroseconds, (long)(ttft * 1000));
                Interlocked.Increment(ref _ttftCount);
            }
        }
        else
        {
            Interlocked.Increment(ref _failed);
        }
        Interlocked.Increment(ref _completed);
    }

    public Snapshot Read()
    {
        var started = Interlocked.Read(ref _usersStarted);
        var sent = Interlocked.Read(ref _sent);
        var completed = Interlocked.Read(ref _completed);
        var abandoned = Interlocked.Read(ref _abandoned);
        return new Snapshot(started, Interlocked.Read(ref _conversationsCompleted), sent, completed, Interlocked.Read(ref _failed),
            abandoned, Math.Max(0, sent - completed - abandoned), Interlocked.Read(ref _completionTokens),
            Interlocked.Read(ref _ttftMicroseconds), Interlocked.Read(ref _ttftCount));
    }
}
