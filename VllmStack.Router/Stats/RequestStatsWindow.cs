using System.Diagnostics;

namespace VllmStack.Router.Stats;

/// <summary>Per-engine request figures over a sliding window, as the router measured them.</summary>
public sealed record RequestStatsSnapshot(double Qps, double AvgLatency, double AvgTtft, double AvgItl, long Requests, long Failures);

/// <summary>
/// A sliding window of one-second buckets: arrivals, completions, latency, time to first byte and
/// inter-chunk time. Old buckets are reset as time moves on, so memory is fixed.
/// </summary>
public sealed class RequestStatsWindow
{
    private readonly Lock _lock = new();
    private readonly Bucket[] _buckets;
    private readonly long _start = Stopwatch.GetTimestamp();

    public RequestStatsWindow(TimeSpan window)
    {
        _buckets = new Bucket[Math.Max(1, (int)Math.Ceiling(window.TotalSeconds))];
        for (var i = 0; i < _buckets.Length; i++)
        {
            _buckets[i] = new Bucket();
        }
    }

    private sealed class Bucket
    {
        public long Second = -1;
        public long Arrivals;
        public long Completions;
        public long Failures;
        public double LatencySum;
        public long TtftCount;
        public double TtftSum;
        public long ItlCount;
        public double ItlSum;
    }

    public void Arrived() => Update(static b => b.Arrivals++);

    public void Completed(double latencySeconds, double? ttftSeconds, double? itlSeconds, int itlCount)
    {
        lock (_lock)
        {
            var b = Current();
            b.Completions++;
            b.LatencySum += latencySeconds;
            if (ttftSeconds is { } ttft)
            {
                b.TtftCount++;
                b.TtftSum += ttft;
            }
            if (itlSeconds is { } itl && itlCount > 0)
            {
                b.ItlCount += itlCount;
                b.ItlSum += itl * itlCount;
            }
        }
    }

    public void Failed() => Update(static b => b.Failures++);

    public RequestStatsSnapshot Snapshot()
    {
        lock (_lock)
        {
            var now = Second();
            long arrivals = 0, completions = 0, failures = 0, ttftCount = 0, itlCount = 0;
            double latency = 0, ttft = 0, itl = 0;
            foreach (var b in _buckets)
            {
                if (b.Second < 0 || now - b.Second >= _buckets.Length)
                {
                    continue;
                }
                arrivals += b.Arrivals;
                completions += b.Completions;
                failures += b.Failures;
                latency += b.LatencySum;
                ttftCount += b.TtftCount;
                ttft += b.TtftSum;
                itlCount += b.ItlCount;
                itl += b.ItlSum;
            }
            // Before the window has filled, divide by the time actually observed.
            var seconds = Math.Min(_buckets.Length, Math.Max(1, Stopwatch.GetElapsedTime(_start).TotalSeconds));
            return new RequestStatsSnapshot(
                arrivals / seconds,
                completions > 0 ? latency / completions : 0,
                ttftCount > 0 ? ttft / ttftCount : 0,
                itlCount > 0 ? itl / itlCount : 0,
                arrivals,
                failures);
        }
    }

    private void Update(Action<Bucket> change)
    {
        lock (_lock)
        {
            change(Current());
        }
    }

    private long Second() => (long)Stopwatch.GetElapsedTime(_start).TotalSeconds;

    private Bucket Current()
    {
        var second = Second();
        var bucket = _buckets[second % _buckets.Length];
        if (bucket.Second != second)
        {
            bucket.Second = second;
            bucket.Arrivals = bucket.Completions = bucket.Failures = bucket.TtftCount = bucket.ItlCount = 0;
            bucket.LatencySum = bucket.TtftSum = bucket.ItlSum = 0;
        }
        return bucket;
    }
}
