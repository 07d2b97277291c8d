using System.Buffers;
using System.Diagnostics.Metrics;
using System.Text;

namespace VllmStack.ServiceDefaults.Metrics;

/// <summary>
/// Listens to every <see cref="System.Diagnostics.Metrics"/> instrument (filtered by options) and keeps
/// cumulative values per series, ready to be written in the Prometheus text format on scrape.
/// </summary>
public sealed class PrometheusMetricsRegistry : IDisposable
{
    private readonly PrometheusExporterOptions _options;
    private readonly MeterListener _listener;
    private readonly Lock _familiesLock = new();
    private readonly Dictionary<string, MetricFamily> _families = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _scrapeGate = new(1, 1);
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    private MetricFamily[] _sorted = [];
    private LastValueState[] _observables = [];
    private long _collection;

    public PrometheusMetricsRegistry(PrometheusExporterOptions options)
    {
        _options = options;
        _listener = new MeterListener
        {
            InstrumentPublished = OnInstrumentPublished,
            MeasurementsCompleted = OnMeasurementsCompleted,
        };
        _listener.SetMeasurementEventCallback<byte>(static (_, v, tags, state) => ((InstrumentState)state!).Record(v, tags));
        _listener.SetMeasurementEventCallback<short>(static (_, v, tags, state) => ((InstrumentState)state!).Record(v, tags));
        _listener.SetMeasurementEventCallback<int>(static (_, v, tags, state) => ((InstrumentState)state!).Record(v, tags));
        _listener.SetMeasurementEventCallback<long>(static (_, v, tags, state) => ((InstrumentState)state!).Record(v, tags));
        _listener.SetMeasurementEventCallback<float>(static (_, v, tags, state) => ((InstrumentState)state!).Record(v, tags));
        _listener.SetMeasurementEventCallback<double>(static (_, v, tags, state) => ((InstrumentState)state!).Record(v, tags));
        _listener.SetMeasurementEventCallback<decimal>(static (_, v, tags, state) => ((InstrumentState)state!).Record((double)v, tags));
        _listener.Start();
    }

    /// <summary>Writes the current exposition to <paramref name="destination"/>; concurrent scrapes take turns.</summary>
    public async Task WriteAsync(Stream destination, CancellationToken cancellationToken)
    {
        await _scrapeGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _buffer.ResetWrittenCount();
            Collect(_buffer);
            await destination.WriteAsync(_buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _scrapeGate.Release();
        }
    }

    /// <summary>The current exposition as a string (tests, diagnostics).</summary>
    public string Scrape()
    {
        _scrapeGate.Wait();
        try
        {
            _buffer.ResetWrittenCount();
            Collect(_buffer);
            return Encoding.UTF8.GetString(_buffer.WrittenSpan);
        }
        finally
        {
            _scrapeGate.Release();
        }
    }

    private void Collect(IBufferWriter<byte> writer)
    {
        var collection = Interlocked.Increment(ref _collection);
        foreach (var observable in Volatile.Read(ref _observables))
        {
            Volatile.Write(ref observable.CurrentCollection, collection);
        }
        _listener.RecordObservableInstruments();
        foreach (var family in Volatile.Read(ref _sorted))
        {
            family.Write(writer, collection);
        }
    }

    private void OnInstrumentPublished(Instrument instrument, MeterListener listener)
    {
        if (_options.InstrumentFilter is { } filter && !filter(instrument))
        {
            return;
        }
        var kind = Classify(instrument);
        if (kind is null)
        {
            return;
        }
        var (type, create) = kind.Value;
        var name = PrometheusNaming.MetricName(instrument, type);
        InstrumentState state;
        lock (_familiesLock)
        {
            if (!_families.TryGetValue(name, out var family))
            {
                family = new MetricFamily(name, type, instrument.Description);
                _families[name] = family;
                _sorted = [.. _families.Values.OrderBy(f => f.Name, StringComparer.Ordinal)];
            }
            else if (family.Type != type)
            {
                // Two instruments of different kinds under one name would make an invalid exposition; the first wins.
                return;
            }
            state = create(instrument);
            family.Add(state);
            if (state is LastValueState { Instrument.IsObservable: true } observable)
            {
                _observables = [.. _observables, observable];
            }
        }
        listener.EnableMeasurementEvents(instrument, state);
    }

    private void OnMeasurementsCompleted(Instrument instrument, object? state)
    {
        if (state is not InstrumentState instrumentState)
        {
            return;
        }
        lock (_familiesLock)
        {
            _observables = [.. _observables.Where(o => !ReferenceEquals(o, instrumentState))];
            foreach (var family in _families.Values)
            {
                family.Remove(instrumentState);
            }
            foreach (var empty in _families.Values.Where(f => f.IsEmpty).ToList())
            {
                _families.Remove(empty.Name);
            }
            _sorted = [.. _families.Values.OrderBy(f => f.Name, StringComparer.Ordinal)];
        }
    }

    private (PrometheusMetricType Type, Func<Instrument, InstrumentState> Create)? Classify(Instrument instrument)
    {
        var type = instrument.GetType();
        if (!type.IsGenericType)
        {
            return null;
        }
        var definition = type.GetGenericTypeDefinition();
        var max = _options.MaxSeriesPerInstrument;
        var format = _options.NumberFormat;
        if (definition == typeof(Counter<>))
        {
            return (PrometheusMetricType.Counter, i => new SumState(i, max, format));
        }
        if (definition == typeof(UpDownCounter<>))
        {
            return (PrometheusMetricType.Gauge, i => new SumState(i, max, format));
        }
        if (definition == typeof(ObservableCounter<>))
        {
            return (PrometheusMetricType.Counter, i => new LastValueState(i, max, format));
        }
        if (definition == typeof(Gauge<>) || definition == typeof(ObservableGauge<>) || definition == typeof(ObservableUpDownCounter<>))
        {
            return (PrometheusMetricType.Gauge, i => new LastValueState(i, max, format));
        }
        if (definition == typeof(Histogram<>))
        {
            var bounds = BucketsFor(instrument);
            return (bounds.Length == 0 ? PrometheusMetricType.Summary : PrometheusMetricType.Histogram,
                i => new HistogramState(i, bounds, max, format));
        }
        return null;
    }

    /// <summary>The advised bounds (none: a summary), else the defaults for the instrument's unit.</summary>
    private double[] BucketsFor(Instrument instrument)
    {
        var advised = instrument switch
        {
            Histogram<double> h => h.Advice?.HistogramBucketBoundaries?.ToArray(),
            Histogram<float> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<short> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<byte> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            Histogram<decimal> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
            _ => null,
        };
        if (advised is not null)
        {
            Array.Sort(advised);
            return [.. advised.Distinct()];
        }
        return instrument.Unit == "s" ? _options.DefaultSecondsBuckets : _options.DefaultBuckets;
    }

    public void Dispose()
    {
        _listener.Dispose();
        _scrapeGate.Dispose();
    }
}
