using System.Buffers;
using System.Text;

namespace VllmStack.ServiceDefaults.Metrics;

/// <summary>One Prometheus metric name with its HELP/TYPE header and the instruments that feed it.</summary>
internal sealed class MetricFamily
{
    private readonly byte[] _header;
    private readonly byte[] _name;
    private InstrumentState[] _instruments = [];

    public MetricFamily(string name, PrometheusMetricType type, string? help)
    {
        Name = name;
        Type = type;
        _name = Encoding.UTF8.GetBytes(name);
        var typeText = type switch
        {
            PrometheusMetricType.Counter => "counter",
            PrometheusMetricType.Histogram => "histogram",
            PrometheusMetricType.Summary => "summary",
            _ => "gauge",
        };
        var header = new StringBuilder();
        if (!string.IsNullOrEmpty(help))
        {
            header.Append("# HELP ").Append(name).Append(' ').Append(PrometheusText.EscapeHelp(help)).Append('\n');
        }
        header.Append("# TYPE ").Append(name).Append(' ').Append(typeText).Append('\n');
        _header = Encoding.UTF8.GetBytes(header.ToString());
    }

    public string Name { get; }

    public PrometheusMetricType Type { get; }

    public bool IsEmpty => Volatile.Read(ref _instruments).Length == 0;

    public void Add(InstrumentState state)
    {
        var current = _instruments;
        Volatile.Write(ref _instruments, [.. current, state]);
    }

    public void Remove(InstrumentState state)
    {
        var current = _instruments;
        Volatile.Write(ref _instruments, [.. current.Where(s => !ReferenceEquals(s, state))]);
    }

    public void Write(IBufferWriter<byte> writer, long collection)
    {
        PrometheusText.Write(writer, _header);
        foreach (var instrument in Volatile.Read(ref _instruments))
        {
            instrument.Write(writer, _name, collection);
        }
    }
}
