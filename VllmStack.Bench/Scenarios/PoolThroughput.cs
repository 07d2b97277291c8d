using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// The KV chunk pool's put/get throughput against redis-benchmark's SET/GET with the same value size, on the same
/// redis-server, in one run: what the cache server's HTTP layer and bookkeeping cost on top of Redis itself.
/// </summary>
public static partial class PoolThroughput
{
    public sealed record Settings(int Runs, int Requests, int Connections, int ChunkBytes, string OutputDirectory);

    public sealed record Measurement(double RedisSetOps, double RedisGetOps, double PoolPutOps, double PoolGetOps);

    public sealed record Report(string Scenario, DateTimeOffset At, Settings Settings, IReadOnlyList<Measurement> Runs, Measurement Median);

    public static async Task<Report> RunAsync(Settings settings, CancellationToken cancellationToken)
    {
        await using var redis = await BenchRedis.StartAsync(cancellationToken);
        var port = redis.Port;
        {
            await using var cacheServer = await ProgramProcess.StartCacheServerAsync(redis.Endpoint, cancellationToken);
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = settings.Connections, UseProxy = false }) { BaseAddress = cacheServer.Url };
            var chunk = new byte[settings.ChunkBytes];
            Random.Shared.NextBytes(chunk);
            Console.WriteLine($"redis-server :{port}, cache server {cacheServer.Url}; {settings.ChunkBytes} B chunks, {settings.Connections} connections");

            var runs = new List<Measurement>();
            for (var run = 1; run <= settings.Runs; run++)
            {
                var (set, get) = await RedisBenchmarkAsync(port, settings, cancellationToken);
                var put = await DriveAsync(settings, i => http.PutAsync($"v1/kv/pool/bench/{(ulong)(run * 10_000_000 + i):x16}", new ByteArrayContent(chunk), cancellationToken), cancellationToken);
                var fetch = await DriveAsync(settings, i => http.GetAsync($"v1/kv/pool/bench/{(ulong)(run * 10_000_000 + i):x16}", cancellationToken), cancellationToken);
                runs.Add(new Measurement(set, get, put, fetch));
                Console.WriteLine($"run {run}/{settings.Runs}: redis SET {set,9:F0}/s GET {get,9:F0}/s | pool PUT {put,9:F0}/s GET {fetch,9:F0}/s");
            }
            var median = new Measurement(Median.Of(runs.Select(r => r.RedisSetOps)), Median.Of(runs.Select(r => r.RedisGetOps)),
                Median.Of(runs.Select(r => r.PoolPutOps)), Median.Of(runs.Select(r => r.PoolGetOps)));
            Console.WriteLine($"median:    redis SET {median.RedisSetOps,9:F0}/s GET {median.RedisGetOps,9:F0}/s | pool PUT {median.PoolPutOps,9:F0}/s (×{median.PoolPutOps / median.RedisSetOps:F2}) GET {median.PoolGetOps,9:F0}/s (×{median.PoolGetOps / median.RedisGetOps:F2})");
            var report = new Report("pool-throughput", DateTimeOffset.UtcNow, settings, runs, median);
            Directory.CreateDirectory(settings.OutputDirectory);
            var file = Path.Combine(settings.OutputDirectory, $"pool-throughput-{report.At:yyyyMMdd-HHmmss}.json");
            await File.WriteAllTextAsync(file, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }), cancellationToken);
            Console.WriteLine($"written: {file}");
            return report;
        }
    }

    /// <summary>Requests with a fixed number in flight; operations per second over the whole batch.</summary>
    private static async Task<double> DriveAsync(Settings settings, Func<int, Task<HttpResponseMessage>> send, CancellationToken cancellationToken)
    {
        var next = -1;
        var errors = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, settings.Connections).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < settings.Requests)
            {
                using var response = await send(i);
                await response.Content.ReadAsByteArrayAsync(cancellationToken);
                if (!response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        }));
        if (errors > 0)
        {
            throw new InvalidOperationException($"{errors} pool requests failed");
        }
        return settings.Requests / clock.Elapsed.TotalSeconds;
    }

    private static async Task<(double Set, double Get)> RedisBenchmarkAsync(int port, Settings settings, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo("redis-benchmark", ["-p", port.ToString(CultureInfo.InvariantCulture), "-t", "set,get", "-d", settings.ChunkBytes.ToString(CultureInfo.InvariantCulture),
            "-n", settings.Requests.ToString(CultureInfo.InvariantCulture), "-c", settings.Connections.ToString(CultureInfo.InvariantCulture), "-q", "-r", "100000"])
        {
            RedirectStandardOutput = true,
        };
        using var process = Process.Start(info) ?? throw new InvalidOperationException("redis-benchmark did not start");
        var output = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken).WaitAsync(TimeSpan.FromMinutes(5), cancellationToken);
        double Rate(string command) => double.Parse(Rps(command).Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        return (Rate("SET"), Rate("GET"));
    }

    private static Regex Rps(string command) => new($@"{command}: ([\d.]+) requests per second");
}
