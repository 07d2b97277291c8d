namespace VllmStack.Hosting.Orchestration;

public sealed record LogLine(long Sequence, DateTimeOffset Time, string Resource, int Replica, bool IsError, string Text);

/// <summary>
/// Console output of every replica, timestamped, in a bounded buffer per resource (old lines drop off), so the
/// dashboard can show recent logs and follow new ones.
/// </summary>
public sealed class ResourceLogs(int linesPerResource = 5000)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Queue<LogLine>> _lines = [];
    private long _sequence;

    public event Action<LogLine>? Written;

    public void Write(string resource, int replica, bool isError, string text)
    {
        LogLine line;
        lock (_lock)
        {
            line = new LogLine(++_sequence, DateTimeOffset.UtcNow, resource, replica, isError, text);
            if (!_lines.TryGetValue(resource, out var queue))
            {
                _lines[resource] = queue = new Queue<LogLine>();
            }
            queue.Enqueue(line);
            while (queue.Count > linesPerResource)
            {
                queue.Dequeue();
            }
        }
        Written?.Invoke(line);
    }

    /// <summary>Lines of a resource after sequence number <paramref name="after"/>, oldest first.</summary>
    public IReadOnlyList<LogLine> Read(string resource, long after = 0, int max = 1000)
    {
        lock (_lock)
        {
            return _lines.TryGetValue(resource, out var queue) ? [.. queue.Where(l => l.Sequence > after).Take(max)] : [];
        }
    }
}
