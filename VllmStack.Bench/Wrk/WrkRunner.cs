using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace VllmStack.Bench.Wrk;

/// <summary>One wrk run's figures.</summary>
public sealed record WrkResult(double RequestsPerSecond, double P50Ms, double P90Ms, double P99Ms, long Requests, long Errors);

/// <summary>Drives Debian's <c>wrk</c> with a POST body and reads its report.</summary>
public static partial class WrkRunner
{
    public static async Task<WrkResult> RunAsync(Uri url, string jsonBody, int connections, int threads, TimeSpan duration, CancellationToken cancellationToken)
    {
        var script = Path.Combine(Path.GetTempPath(), $"vllmstack-wrk-{Guid.NewGuid():N}.lua");
        var escaped = jsonBody.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal);
        await File.WriteAllTextAsync(script,
            $"wrk.method = \"POST\"\nwrk.body = '{escaped}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n", cancellationToken);
        try
        {
            var info = new ProcessStartInfo("wrk") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[] { "-t", threads.ToString(CultureInfo.InvariantCulture), "-c", connections.ToString(CultureInfo.InvariantCulture),
                         "-d", $"{(int)duration.TotalSeconds}s", "--latency", "--timeout", "10s", "-s", script, url.ToString() })
            {
                info.ArgumentList.Add(arg);
            }
            using var process = Process.Start(info) ?? throw new InvalidOperationException("wrk did not start: apt-get install wrk");
            var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var errors = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken).WaitAsync(duration + TimeSpan.FromSeconds(30), cancellationToken);
            var text = await output;
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"wrk failed ({process.ExitCode}): {text}{await errors}");
            }
            return Parse(text);
        }
        finally
        {
            File.Delete(script);
        }
    }

    internal static WrkResult Parse(string report)
    {
        double Latency(string percentile)
        {
            var match = Regex.Match(report, $@"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", RegexOptions.Multiline);
            if (!match.Success)
            {
                throw new FormatException($"wrk report has no {percentile}% latency:\n{report}");
            }
            var value = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
            return match.Groups[2].Value switch { "us" => value / 1000, "s" => value * 1000, _ => value };
        }
        var rps = RequestsPerSecond().Match(report);
        var total = TotalRequests().Match(report);
        var non2xx = Non2xx().Match(report);
        var socket = SocketErrors().Match(report);
        long errors = non2xx.Success ? long.Parse(non2xx.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        if (socket.Success)
        {
            errors += socket.Groups.Values.Skip(1).Sum(g => long.Parse(g.Value, CultureInfo.InvariantCulture));
        }
        return new WrkResult(
            double.Parse(rps.Groups[1].Value, CultureInfo.InvariantCulture),
            Latency("50"), Latency("90"), Latency("99"),
            long.Parse(total.Groups[1].Value, CultureInfo.InvariantCulture),
            errors);
    }

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex RequestsPerSecond();

    [GeneratedRegex(@"(\d+) requests in")]
    private static partial Regex TotalRequests();

    [GeneratedRegex(@"Non-2xx or 3xx responses:\s+(\d+)")]
    private static partial Regex Non2xx();

    [GeneratedRegex(@"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")]
    private static partial Regex SocketErrors();
}
