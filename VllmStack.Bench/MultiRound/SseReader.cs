using System.Runtime.CompilerServices;
using System.Text;

namespace VllmStack.Bench.MultiRound;

/// <summary>
/// The data of server-sent events: <c>data:</c> lines joined until a blank line ends the event. Comments
/// (<c>:</c>) and other fields (<c>event:</c>, <c>id:</c>) are skipped; OpenAI streams use neither.
/// </summary>
public static class SseReader
{
    public static async IAsyncEnumerable<string> ReadEventsAsync(TextReader reader, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var data = new StringBuilder();
        var hasData = false;
        // Bounded by the stream: the caller's request timeout ends a stream that never does.
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                if (hasData)
                {
                    yield return data.ToString();
                    data.Clear();
                    hasData = false;
                }
                continue;
            }
            if (!line.StartsWith("data:", StringComparison.Ordinal))
            {
                continue;
            }
            var value = line.AsSpan(5);
            if (value.Length > 0 && value[0] == ' ')
            {
                value = value[1..];
            }
            if (hasData)
            {
                data.Append('\n');
            }
            data.Append(value);
            hasData = true;
        }
        if (hasData)
        {
            yield return data.ToString();
        }
    }
}
