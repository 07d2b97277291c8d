using System.Diagnostics;
using System.Net.Http.Headers;

namespace VllmStack.Bench.Scenarios;

/// <summary>Latency percentiles of one measured series, in milliseconds.</summary>
public sealed record Percentiles(double P50, double P90, double P99, int Count, int Errors)
{
    public static Percentiles Of(IReadOnlyList<double> values, int errors)
    {
        var sorted = values.Order().ToArray();
        double At(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
        return new Percentiles(At(0.50), At(0.90), At(0.99), sorted.Length, errors);
    }
}

/// <summary>The median of several runs' figures (the mean of the middle two for an even count).</summary>
public static class Median
{
    public static double Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}

/// <summary>
/// Measurements wrk cannot make: an open-loop load at a fixed rate (requests leave on schedule whether or not
/// earlier ones have returned, as real users' do) and time to the first streamed byte.
/// </summary>
public sealed class LatencyProbe : IDisposable
{
    private readonly HttpClient _client = new(new SocketsHttpHandler
    {
        MaxConnectionsPerServer = 512,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        UseProxy = false,
    })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };

    public async Task<Percentiles> FixedRateAsync(Uri url, string body, int rate, TimeSpan duration, CancellationToken cancellationToken)
    {
        var total = (int)(rate * duration.TotalSeconds);
        var latencies = new double[total];
        var failed = new bool[total];
        var tasks = new Task[total];
        var start = Stopwatch.GetTimestamp();
        for (var i = 0; i < total; i++)
        {
            var due = start + (long)(i * (double)Stopwatch.Frequency / rate);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
            if (wait > TimeSpan.FromMilliseconds(1))
            {
                await Task.Delay(wait, cancellationToken);
            }
            var index = i;
            tasks[i] = Task.Run(async () =>
            {
                var sent = Stopwatch.GetTimestamp();
                try
                {
                    using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
                    using var response = await _client.PostAsync(url, content, cancellationToken);
                    await response.Content.ReadAsByteArrayAsync(cancellationToken);
                    failed[index] = !response.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    failed[index] = true;
                }
                latencies[index] = Stopwatch.GetElapsedTime(sent).TotalMilliseconds;
            }, cancellationToken);
        }
        await Task.WhenAll(tasks);
        return Percentiles.Of([.. latencies.Where((_, i) => !failed[i])], failed.Count(f => f));
    }

    /// <summary>One streaming request after another; the time from sending to the first body byte.</summary>
    public async Task<Percentiles> TimeToFirstByteAsync(Uri url, string body, int requests, CancellationToken cancellationToken)
    {
        var values = new List<double>(requests);
        var errors = 0;
        var buffer = new byte[4096];
        for (var i = 0; i < requests; i++)
        {
            var sent = Stopwatch.GetTimestamp();
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body) };
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
            var read = await stream.ReadAsync(buffer, cancellationToken);
            var firstByte = Stopwatch.GetElapsedTime(sent).TotalMilliseconds;
            while (read > 0)
            {
                read = await stream.ReadAsync(buffer, cancellationToken);
            }
            if (response.IsSuccessStatusCode)
            {
                values.Add(firstByte);
            }
            else
            {
                errors++;
            }
        }
        return Percentiles.Of(values, errors);
    }

    public void Dispose() => _client.Dispose();
}
