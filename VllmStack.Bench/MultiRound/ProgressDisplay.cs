using System.Diagnostics;
using System.Globalization;

namespace VllmStack.Bench.MultiRound;

/// <summary>
/// A one-line view of a running load: rewritten in place (<c>\r</c>) on a terminal, a new line every few
/// seconds when the output goes to a file or a pipe, so logs stay readable.
/// </summary>
public sealed class ProgressDisplay(LiveCounters counters, TextWriter output, bool interactive, TimeSpan duration)
{
    private int _lastWidth;

    public TimeSpan Interval => interactive ? TimeSpan.FromMilliseconds(500) : TimeSpan.FromSeconds(5);

    /// <summary>Shows progress until <paramref name="cancellationToken"/> is cancelled (when the run is over).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var previous = counters.Read();
        var previousAt = TimeSpan.Zero;
        using var timer = new PeriodicTimer(Interval);
        try
        {
            // Bounded by the run: the caller cancels when it ends.
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                var now = counters.Read();
                var at = clock.Elapsed;
                Write(Line(previous, now, at - previousAt, at));
                (previous, previousAt) = (now, at);
            }
        }
        catch (OperationCanceledException)
        {
            // The run is over.
        }
        if (interactive && _lastWidth > 0)
        {
            output.WriteLine();
        }
    }

    /// <summary>Totals so far, and rates over the last interval.</summary>
    public string Line(LiveCounters.Snapshot before, LiveCounters.Snapshot now, TimeSpan interval, TimeSpan elapsed)
    {
        var seconds = Math.Max(interval.TotalSeconds, 1e-9);
        var ttftCount = now.TtftCount - before.TtftCount;
        var ttft = ttftCount > 0 ? $"{(now.TtftMicroseconds - before.TtftMicroseconds) / 1000.0 / ttftCount:F1} ms" : "-";
        return string.Create(CultureInfo.InvariantCulture,
            $"{elapsed.TotalSeconds,6:F1}/{duration.TotalSeconds:F0} s  users {now.UsersStarted} started, {now.ConversationsCompleted} finished  " +
            $"done {now.Completed}  errors {now.Failed}  in flight {now.InFlight}  |  " +
            $"{(now.Completed - before.Completed) / seconds:F1} req/s  {(now.CompletionTokens - before.CompletionTokens) / seconds:F0} tok/s  TTFT {ttft}");
    }

    private void Write(string line)
    {
        if (interactive)
        {
            // Pad over the remains of a longer previous line.
            output.Write("\r" + line.PadRight(_lastWidth));
            _lastWidth = line.Length;
        }
        else
        {
            output.WriteLine(line);
        }
        output.Flush();
    }
}
