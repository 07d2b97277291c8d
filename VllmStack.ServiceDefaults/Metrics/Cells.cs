namespace VllmStack.ServiceDefaults.Metrics;

/// <summary>A number that is added to (counters) or set (gauges, observed values) from any thread.</summary>
internal sealed class ValueCell
{
    private double _value;

    /// <summary>The collection round in which an observable callback last reported this series.</summary>
    public long ObservedIn;

    public double Value => Volatile.Read(ref _value);

    public void Add(double delta)
    {
        var current = Volatile.Read(ref _value);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref _value, current + delta, current);
            if (seen.Equals(current))
            {
                return;
            }
            current = seen;
        }
    }

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
        var current = Volatile.Read(ref _sum);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref _sum, current + value, current);
            if (seen.Equals(current))
            {
                return;
            }
            current = seen;
        }
    }
}
