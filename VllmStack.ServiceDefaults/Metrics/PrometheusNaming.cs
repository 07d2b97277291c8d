using System.Diagnostics.Metrics;
using System.Text;

namespace VllmStack.ServiceDefaults.Metrics;

/// <summary>
/// Maps OpenTelemetry-style instrument names and units onto Prometheus metric names
/// (<c>[a-zA-Z_:][a-zA-Z0-9_:]*</c>) and label names (<c>[a-zA-Z_][a-zA-Z0-9_]*</c>).
/// Colons are kept in metric names because vLLM's names (<c>vllm:…</c>) use them.
/// </summary>
public static class PrometheusNaming
{
    public static string MetricName(Instrument instrument, PrometheusMetricType type)
    {
        var name = Sanitize(instrument.Name, allowColon: true);
        var unitSuffix = UnitSuffix(instrument.Unit);
        if (unitSuffix is not null && !name.EndsWith("_" + unitSuffix, StringComparison.Ordinal))
        {
            name = name + "_" + unitSuffix;
        }
        if (type == PrometheusMetricType.Counter && !name.EndsWith("_total", StringComparison.Ordinal))
        {
            name += "_total";
        }
        return name;
    }

    public static string LabelName(string key)
    {
        var name = Sanitize(key, allowColon: false);
        // Names starting with "__" are reserved for Prometheus itself.
        return name.StartsWith("__", StringComparison.Ordinal) ? "_" + name.TrimStart('_') : name;
    }

    /// <summary>Unit suffix per the OpenTelemetry→Prometheus convention; annotations such as <c>{token}</c> add none.</summary>
    public static string? UnitSuffix(string? unit) => unit switch
    {
        null or "" or "1" => null,
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "min" => "minutes",
        "h" => "hours",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "%" => "percent",
        _ when unit.StartsWith('{') => null,
        _ => Sanitize(unit, allowColon: false).Trim('_') is { Length: > 0 } s ? s : null,
    };

    internal static string Sanitize(string raw, bool allowColon)
    {
        if (raw.Length == 0)
        {
            return "_";
        }
        var sb = new StringBuilder(raw.Length + 1);
        for (var i = 0; i < raw.Length; i++)
        {
            var c = raw[i];
            var ok = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' || (allowColon && c == ':') || (i > 0 && c is >= '0' and <= '9');
            if (ok)
            {
                sb.Append(c);
            }
            else if (i == 0 && c is >= '0' and <= '9')
            {
                sb.Append('_').Append(c);
            }
            else
            {
                sb.Append('_');
            }
        }
        return sb.ToString();
    }
}

public enum PrometheusMetricType
{
    Counter,
    Gauge,
    Histogram,

    /// <summary>A histogram without buckets: <c>_sum</c> and <c>_count</c> only (a summary without quantiles).</summary>
    Summary,
}
