using System.Globalization;

namespace VllmStack.ServiceDefaults.Metrics;

/// <summary>
/// Doubles written the way Python writes them: <see cref="Repr"/> is Python's <c>repr()</c>/<c>str()</c> of a float
/// (the shortest digits that read back to the same value, always with a fraction or an exponent: <c>1.0</c>,
/// <c>0.005</c>, <c>1e-05</c>, <c>1e+16</c>); <see cref="GoString"/> is prometheus_client's <c>floatToGoString</c>,
/// which writes every sample value and <c>le</c> label of a Python exposition: <c>repr()</c>, except that positive
/// values with more than six integer digits switch to an exponent, as Go's client does (<c>1.234567e+06</c>).
/// Both format into a span without allocating.
/// </summary>
public static class PythonFloat
{
    /// <summary>Longest output: sign, 17 significant digits, point, up to 15 padding zeros or "e+308".</summary>
    internal const int MaxLength = 40;

    /// <summary>Python's <c>str(float)</c>, e.g. for the label values vLLM makes with <c>str()</c> (<c>gpu_memory_utilization="0.9"</c>).</summary>
    public static string Repr(double value) => Format(value, goExponents: false);

    /// <summary>prometheus_client's <c>floatToGoString</c>: <c>+Inf</c>, <c>-Inf</c>, <c>NaN</c>, else <see cref="Repr"/> with Go's exponents.</summary>
    public static string GoString(double value) => Format(value, goExponents: true);

    private static string Format(double value, bool goExponents)
    {
        Span<char> chars = stackalloc char[MaxLength];
        var length = TryFormat(value, chars, goExponents);
        return new string(chars[..length]);
    }

    /// <summary>Writes <paramref name="value"/> into <paramref name="destination"/> (at least <see cref="MaxLength"/> long); returns the length.</summary>
    internal static int TryFormat(double value, Span<char> destination, bool goExponents)
    {
        if (!double.IsFinite(value))
        {
            var special = double.IsNaN(value) ? "NaN" : value > 0 ? (goExponents ? "+Inf" : "inf") : (goExponents ? "-Inf" : "-inf");
            special.CopyTo(destination);
            return special.Length;
        }
        var position = 0;
        if (double.IsNegative(value))
        {
            destination[position++] = '-';
        }
        if (value == 0)
        {
            "0.0".CopyTo(destination[position..]);
            return position + 3;
        }

        // .NET's "R" gives the same shortest round-trip digits as Python; only the layout differs.
        Span<char> dotnet = stackalloc char[32];
        Span<char> digits = stackalloc char[32];
        Math.Abs(value).TryFormat(dotnet, out var written, "R", CultureInfo.InvariantCulture);
        var count = 0;
        var point = -1;
        var exponent = 0;
        for (var i = 0; i < written; i++)
        {
            var c = dotnet[i];
            if (c == '.')
            {
                point = count;
            }
            else if (c is 'E' or 'e')
            {
                exponent = int.Parse(dotnet[(i + 1)..written], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
                break;
            }
            else
            {
                digits[count++] = c;
            }
        }
        if (point < 0)
        {
            point = count;
        }
        var start = 0;
        while (digits[start] == '0')
        {
            start++;
            point--;
        }
        while (digits[count - 1] == '0')
        {
            count--;
        }
        digits = digits[start..count];
        // The value is d.ddd × 10^scientific.
        var scientific = point - 1 + exponent;

        if (scientific is < -4 or >= 16)
        {
            return position + WriteScientific(digits, scientific, destination[position..], "e");
        }
        if (goExponents && scientific >= 6 && value > 0)
        {
            // floatToGoString (positive values only) pastes the exponent after "e+0": 1e+06 … 1e+09, then 1e+010 … 1e+015.
            return position + WriteScientific(digits, scientific, destination[position..], "e+0");
        }
        if (scientific >= 0)
        {
            for (var i = 0; i <= scientific; i++)
            {
                destination[position++] = i < digits.Length ? digits[i] : '0';
            }
            destination[position++] = '.';
            if (digits.Length > scientific + 1)
            {
                digits[(scientific + 1)..].CopyTo(destination[position..]);
                position += digits.Length - scientific - 1;
            }
            else
            {
                destination[position++] = '0';
            }
            return position;
        }
        destination[position++] = '0';
        destination[position++] = '.';
        for (var i = -1; i > scientific; i--)
        {
            destination[position++] = '0';
        }
        digits.CopyTo(destination[position..]);
        return position + digits.Length;
    }

    /// <summary>Python's <c>1.5e+20</c>, <c>1e-05</c> (two exponent digits at least); or, with the "e+0" prefix, floatToGoString's.</summary>
    private static int WriteScientific(ReadOnlySpan<char> digits, int exponent, Span<char> destination, string marker)
    {
        var position = 0;
        destination[position++] = digits[0];
        if (digits.Length > 1)
        {
            destination[position++] = '.';
            digits[1..].CopyTo(destination[position..]);
            position += digits.Length - 1;
        }
        marker.CopyTo(destination[position..]);
        position += marker.Length;
        if (marker.Length == 1)
        {
            destination[position++] = exponent < 0 ? '-' : '+';
            if (Math.Abs(exponent) < 10)
            {
                destination[position++] = '0';
            }
        }
        Math.Abs(exponent).TryFormat(destination[position..], out var written, default, CultureInfo.InvariantCulture);
        return position + written;
    }
}
