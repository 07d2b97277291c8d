using System.Buffers;
using System.Globalization;
using System.Text;

namespace VllmStack.ServiceDefaults.Metrics;

/// <summary>Low-level writers for the Prometheus text exposition format (version 0.0.4).</summary>
public static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Escapes a label value: backslash, double quote and line feed.</summary>
    public static string EscapeLabelValue(string value)
    {
        if (value.AsSpan().IndexOfAny('\\', '"', '\n') < 0)
        {
            return value;
        }
        var sb = new StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            sb.Append(c switch { '\\' => "\\\\", '"' => "\\\"", '\n' => "\\n", _ => c.ToString() });
        }
        return sb.ToString();
    }

    /// <summary>Escapes HELP text: backslash and line feed (quotes are literal there).</summary>
    public static string EscapeHelp(string value) =>
        value.AsSpan().IndexOfAny('\\', '\n') < 0 ? value : value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>Renders a tag value the way it should appear inside a label.</summary>
    public static string FormatTagValue(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        double d => FormatDouble(d),
        float f => FormatDouble(f),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>A number as <paramref name="format"/> writes it (label values such as <c>le</c>).</summary>
    public static string FormatDouble(double value, PrometheusNumberFormat format) =>
        format == PrometheusNumberFormat.Python ? PythonFloat.GoString(value) : FormatDouble(value);

    public static string FormatDouble(double value) => value switch
    {
        double.PositiveInfinity => "+Inf",
        double.NegativeInfinity => "-Inf",
        double.NaN => "NaN",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    /// <summary>Writes a sample value as <paramref name="format"/> writes it, without allocating.</summary>
    public static void WriteDouble(IBufferWriter<byte> writer, double value, PrometheusNumberFormat format)
    {
        if (format == PrometheusNumberFormat.Go)
        {
            WriteDouble(writer, value);
            return;
        }
        Span<char> chars = stackalloc char[PythonFloat.MaxLength];
        var length = PythonFloat.TryFormat(value, chars, goExponents: true);
        var span = writer.GetSpan(length);
        for (var i = 0; i < length; i++)
        {
            span[i] = (byte)chars[i];
        }
        writer.Advance(length);
    }

    public static void WriteDouble(IBufferWriter<byte> writer, double value)
    {
        if (double.IsFinite(value))
        {
            var span = writer.GetSpan(32);
            if (!value.TryFormat(span, out var written, "R", CultureInfo.InvariantCulture))
            {
                throw new InvalidOperationException("A double did not fit in 32 bytes.");
            }
            writer.Advance(written);
            return;
        }
        WriteAscii(writer, FormatDouble(value));
    }

    public static void WriteLong(IBufferWriter<byte> writer, long value)
    {
        var span = writer.GetSpan(20);
        value.TryFormat(span, out var written, default, CultureInfo.InvariantCulture);
        writer.Advance(written);
    }

    public static void WriteAscii(IBufferWriter<byte> writer, string text)
    {
        var span = writer.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        writer.Advance(Encoding.UTF8.GetBytes(text, span));
    }

    public static void Write(IBufferWriter<byte> writer, ReadOnlySpan<byte> bytes)
    {
        var span = writer.GetSpan(bytes.Length);
        bytes.CopyTo(span);
        writer.Advance(bytes.Length);
    }

    public static void WriteByte(IBufferWriter<byte> writer, byte b)
    {
        writer.GetSpan(1)[0] = b;
        writer.Advance(1);
    }
}
