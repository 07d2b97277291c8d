namespace VllmStack.EngineSim.Generation;

/// <summary>
/// Finds stop strings in the text generated so far. While streaming, the tail that could still turn into a
/// stop string is held back, as vLLM does, so the client never sees text that is later cut.
/// </summary>
public sealed class StopMatcher(IReadOnlyList<string> stops, bool includeStopInOutput)
{
    private readonly int _longest = stops.Count == 0 ? 0 : stops.Max(s => s.Length);

    public bool IsEmpty => stops.Count == 0;

    /// <summary>Checks text that grew from <paramref name="previousLength"/>; returns where the output ends and the stop string hit.</summary>
    public (int OutputLength, string? Stop) Find(string text, int previousLength)
    {
        if (stops.Count == 0)
        {
            return (text.Length, null);
        }
        var from = Math.Max(0, previousLength - _longest + 1);
        var best = -1;
        string? hit = null;
        foreach (var stop in stops)
        {
            var at = text.IndexOf(stop, from, StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || at < best))
            {
                best = at;
                hit = stop;
            }
        }
        if (hit is null)
        {
            return (text.Length, null);
        }
        return (includeStopInOutput ? best + hit.Length : best, hit);
    }

    /// <summary>How much of the text is safe to stream: everything but a tail that is a prefix of some stop string.</summary>
    public int SafeLength(string text)
    {
        if (stops.Count == 0)
        {
            return text.Length;
        }
        var holdBack = 0;
        for (var length = Math.Min(_longest - 1, text.Length); length > 0; length--)
        {
            var tail = text.AsSpan(text.Length - length);
            foreach (var stop in stops)
            {
                if (stop.AsSpan().StartsWith(tail, StringComparison.Ordinal))
                {
                    holdBack = length;
                    break;
                }
            }
            if (holdBack > 0)
            {
                break;
            }
        }
        return text.Length - holdBack;
    }
}
