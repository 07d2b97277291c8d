namespace VllmStack.ServiceDefaults.Metrics;

/// <summary>A number that is added to (counters) or set (gauges, observed values) from any thread.</summary>
internal sealed class ValueCell
{
    private double _value;

    /// <summary>The collection round in which an observable callback last reported this series.</summary>
    public long ObservedIn;

    public double Value => Volatile.Read(ref _value);

    public void Add(double delta) => AtomicDouble.Add(ref _value, delta);

    public void Set(double value) => Volatile.Write(ref _value, value);
}

/// <summary>Counts per bucket (the last one is +Inf) and the sum of all recorded values.</summary>
internal sealed class HistogramCell
{
    private readonly double[] _bounds;
    private double _sum;

    public HistogramCell(double[] bounds)
    {
        _bounds = bounds;
        Counts = new long[bounds.Length + 1];
    }

    public long[] Counts { get; }

    public double Sum => Volatile.Read(ref _sum);

    public void Record(double value)
    {
        var bounds = _bounds;
        var index = bounds.Length;
        // Buckets are few (≤ ~25), a linear scan beats a binary search at that size.
        for (var i = 0; i < bounds.Length; i++)
        {
            if (value <= bounds[i])
            {
                index = i;
                break;
            }
        }
        Interlocked.Increment(ref Counts[index]);
        AtomicDouble.Add(ref _sum, value);
    }
}

internal static class AtomicDouble
{
    /// <summary>Lock-free add: retry until no other thread changed the value between read and swap.</summary>
    public static void Add(ref double location, double delta)
    {
        var current = Volatile.Read(ref location);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref location, current + delta, current);
            if (seen.Equals(current))
            {
                return;
            }
            current = seen;
        }
    }
}
