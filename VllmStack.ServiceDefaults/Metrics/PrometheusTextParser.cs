using System.Globalization;
using System.Text;

namespace VllmStack.ServiceDefaults.Metrics;

/// <summary>One sample line of a Prometheus text exposition.</summary>
public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public bool Has(string label, string value) => Labels.TryGetValue(label, out var v) && v == value;
}

/// <summary>
/// Reads the Prometheus text format (what vLLM's and our own <c>/metrics</c> serve) into samples, for the
/// services that scrape engines and for tests. Comments and blank lines are skipped; a malformed line throws.
/// </summary>
public static class PrometheusTextParser
{
    public static IReadOnlyList<PrometheusSample> Parse(string text) => Parse(text, null);

    /// <summary>Only samples whose metric name <paramref name="includeName"/> accepts (cheap: other lines are not parsed).</summary>
    public static IReadOnlyList<PrometheusSample> Parse(string text, Func<string, bool>? includeName)
    {
        var samples = new List<PrometheusSample>();
        var lineNumber = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNumber++;
            var line = rawLine.TrimEnd('\r').Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            if (includeName is not null)
            {
                var end = line.AsSpan().IndexOfAny('{', ' ', '\t');
                if (!includeName(end < 0 ? line : line[..end]))
                {
                    continue;
                }
            }
            samples.Add(ParseLine(line, lineNumber));
        }
        return samples;
    }

    private static PrometheusSample ParseLine(string line, int lineNumber)
    {
        var i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ' && line[i] != '\t')
        {
            i++;
        }
        var name = line[..i];
        if (name.Length == 0)
        {
            throw new FormatException($"Line {lineNumber}: no metric name.");
        }
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                while (i < line.Length && (line[i] == ' ' || line[i] == ','))
                {
                    i++;
                }
                if (i < line.Length && line[i] == '}')
                {
                    i++;
                    break;
                }
                var eq = line.IndexOf('=', i);
                if (eq < 0 || eq + 1 >= line.Length || line[eq + 1] != '"')
                {
                    throw new FormatException($"Line {lineNumber}: malformed label in '{line}'.");
                }
                var key = line[i..eq].Trim();
                i = eq + 2;
                var value = new StringBuilder();
                while (true)
                {
                    if (i >= line.Length)
                    {
                        throw new FormatException($"Line {lineNumber}: unterminated label value in '{line}'.");
                    }
                    var c = line[i++];
                    if (c == '"')
                    {
                        break;
                    }
                    if (c == '\\' && i < line.Length)
                    {
                        var escaped = line[i++];
                        value.Append(escaped switch { 'n' => '\n', '\\' => '\\', '"' => '"', _ => escaped });
                    }
                    else
                    {
                        value.Append(c);
                    }
                }
                labels[key] = value.ToString();
            }
        }
        var rest = line[i..].Trim();
        var space = rest.IndexOfAny([' ', '\t']);
        var valueText = space < 0 ? rest : rest[..space];
        return new PrometheusSample(name, labels, ParseValue(valueText, lineNumber));
    }

    private static double ParseValue(string text, int lineNumber) => text switch
    {
        "+Inf" or "Inf" => double.PositiveInfinity,
        "-Inf" => double.NegativeInfinity,
        "NaN" => double.NaN,
        _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new FormatException($"Line {lineNumber}: '{text}' is not a number."),
    };
}

public static class PrometheusSampleExtensions
{
    /// <summary>The sum over every sample of <paramref name="name"/> whose labels include all of <paramref name="labels"/>.</summary>
    public static double Sum(this IEnumerable<PrometheusSample> samples, string name, params (string Label, string Value)[] labels) =>
        samples.Where(s => s.Name == name && labels.All(l => s.Has(l.Label, l.Value))).Sum(s => s.Value);

    public static bool Contains(this IEnumerable<PrometheusSample> samples, string name) => samples.Any(s => s.Name == name);
}
