using System.Diagnostics;
using VllmStack.Bench.MultiRound;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// Requests sent at a fixed rate, open loop (an arrival never waits for an earlier answer, as independent users do not),
/// and every answer awaited: what the overload and LoRA scenarios offer a stack.
/// </summary>
public static class OpenLoopLoad
{
    /// <summary>One answer and when it was complete, from the first send.</summary>
    public sealed record Answer(RequestRecord Record, TimeSpan Done);

    /// <summary>Sends request <c>i</c> (<paramref name="turn"/>) at <c>i / rate</c> seconds, for <paramref name="count"/> requests.</summary>
    public static async Task<IReadOnlyList<Answer>> SendAsync(OpenAiChatClient client, double rate, int count, Func<int, ChatTurn> turn, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var sends = new List<Task<Answer>>(count);
        for (var i = 0; i < count; i++)
        {
            var due = TimeSpan.FromSeconds(i / rate);
            if (due > clock.Elapsed)
            {
                await Task.Delay(due - clock.Elapsed, cancellationToken);
            }
            var next = turn(i);
            sends.Add(Task.Run(async () =>
            {
                var result = await client.SendAsync(next, cancellationToken);
                return new Answer(result.Record, clock.Elapsed);
            }, cancellationToken));
        }
        return await Task.WhenAll(sends);
    }

    /// <summary>
    /// The time the offered load took to be answered: at least the sending time, longer when a backlog was served late
    /// (rates are computed over it).
    /// </summary>
    public static double SpanSeconds(IReadOnlyList<Answer> answers, TimeSpan sending) =>
        Math.Max(sending.TotalSeconds, answers.Count == 0 ? 0 : answers.Max(a => a.Done).TotalSeconds);
}
