using System.Buffers;
using System.Diagnostics.Metrics;
using System.Text;

namespace VllmStack.ServiceDefaults.Metrics;

/// <summary>What the exporter keeps for one instrument; the listener hands it back with every measurement.</summary>
internal abstract class InstrumentState(Instrument instrument, PrometheusNumberFormat format)
{
    public Instrument Instrument { get; } = instrument;

    protected PrometheusNumberFormat Format { get; } = format;

    /// <summary>Called on the service's hot path: must not allocate once the series exists.</summary>
    public abstract void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags);

    public abstract void Write(IBufferWriter<byte> writer, byte[] metricName, long collection);

    protected void WriteSample(IBufferWriter<byte> writer, byte[] name, byte[] labels, double value)
    {
        PrometheusText.Write(writer, name);
        if (labels.Length > 0)
        {
            PrometheusText.WriteByte(writer, (byte)'{');
            PrometheusText.Write(writer, labels);
            PrometheusText.WriteByte(writer, (byte)'}');
        }
        PrometheusText.WriteByte(writer, (byte)' ');
        PrometheusText.WriteDouble(writer, value, Format);
        PrometheusText.WriteByte(writer, (byte)'\n');
    }
}

/// <summary>Counters and up-down counters: measurements are deltas.</summary>
internal sealed class SumState(Instrument instrument, int maxSeries, PrometheusNumberFormat format) : InstrumentState(instrument, format)
{
    private readonly SeriesTable<ValueCell> _series = new(static () => new ValueCell(), maxSeries);

    public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags) => _series.Get(tags).Add(value);

    public override void Write(IBufferWriter<byte> writer, byte[] metricName, long collection)
    {
        foreach (var (tags, cell) in _series.Series)
        {
            WriteSample(writer, metricName, tags.Labels, cell.Value);
        }
    }
}

/// <summary>
/// Gauges and every observable instrument: measurements are absolute values. Observable series that
/// their callback no longer reports are left out of the scrape.
/// </summary>
internal sealed class LastValueState(Instrument instrument, int maxSeries, PrometheusNumberFormat format) : InstrumentState(instrument, format)
{
    private readonly SeriesTable<ValueCell> _series = new(static () => new ValueCell(), maxSeries);

    public long CurrentCollection;

    public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var cell = _series.Get(tags);
        cell.Set(value);
        cell.ObservedIn = Volatile.Read(ref CurrentCollection);
    }

    public override void Write(IBufferWriter<byte> writer, byte[] metricName, long collection)
    {
        var observable = Instrument.IsObservable;
        foreach (var (tags, cell) in _series.Series)
        {
            if (!observable || cell.ObservedIn == collection)
            {
                WriteSample(writer, metricName, tags.Labels, cell.Value);
            }
        }
    }
}

/// <summary>
/// Histograms: cumulative <c>_bucket{le}</c> lines, <c>_sum</c>, <c>_count</c>. Without bounds, only <c>_sum</c> and
/// <c>_count</c>: a summary without quantiles.
/// </summary>
internal sealed class HistogramState : InstrumentState
{
    private readonly SeriesTable<HistogramCell> _series;
    private readonly byte[][] _leLabels;
    private byte[]? _bucketName;
    private byte[]? _sumName;
    private byte[]? _countName;

    public HistogramState(Instrument instrument, double[] bounds, int maxSeries, PrometheusNumberFormat format) : base(instrument, format)
    {
        _series = new SeriesTable<HistogramCell>(() => new HistogramCell(bounds), maxSeries);
        _leLabels = new byte[bounds.Length + 1][];
        for (var i = 0; i < bounds.Length; i++)
        {
            _leLabels[i] = Encoding.UTF8.GetBytes($"le=\"{PrometheusText.FormatDouble(bounds[i], format)}\"");
        }
        _leLabels[^1] = "le=\"+Inf\""u8.ToArray();
    }

    public override void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags) => _series.Get(tags).Record(value);

    public override void Write(IBufferWriter<byte> writer, byte[] metricName, long collection)
    {
        _bucketName ??= Concat(metricName, "_bucket"u8);
        _sumName ??= Concat(metricName, "_sum"u8);
        _countName ??= Concat(metricName, "_count"u8);
        foreach (var (tags, cell) in _series.Series)
        {
            long cumulative = 0;
            for (var i = 0; i < cell.Counts.Length; i++)
            {
                cumulative += Volatile.Read(ref cell.Counts[i]);
                if (_leLabels.Length == 1)
                {
                    continue;
                }
                PrometheusText.Write(writer, _bucketName);
                PrometheusText.WriteByte(writer, (byte)'{');
                if (tags.Labels.Length > 0)
                {
                    PrometheusText.Write(writer, tags.Labels);
                    PrometheusText.WriteByte(writer, (byte)',');
                }
                PrometheusText.Write(writer, _leLabels[i]);
                PrometheusText.Write(writer, "} "u8);
                PrometheusText.WriteDouble(writer, cumulative, Format);
                PrometheusText.WriteByte(writer, (byte)'\n');
            }
            WriteSample(writer, _sumName, tags.Labels, cell.Sum);
            // The count is the +Inf bucket, so the two always agree even while measurements race the scrape.
            WriteSample(writer, _countName, tags.Labels, cumulative);
        }
    }

    private static byte[] Concat(byte[] a, ReadOnlySpan<byte> b)
    {
        var result = new byte[a.Length + b.Length];
        a.CopyTo(result, 0);
        b.CopyTo(result.AsSpan(a.Length));
        return result;
    }
}
