using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.Tests.Infrastructure;

/// <summary>A real router process on a free loopback port.</summary>
public sealed class RouterProcess : IAsyncDisposable
{
    private readonly ProgramProcess _program;

    private RouterProcess(ProgramProcess program)
    {
        _program = program;
        Http = new HttpClient { BaseAddress = program.BaseUrl, Timeout = TimeSpan.FromSeconds(60) };
    }

    public Uri BaseUrl => _program.BaseUrl;

    public HttpClient Http { get; }

    public string Output => _program.Output;

    /// <summary>Starts the router; fast scrape and probe intervals keep tests short.</summary>
    public static async Task<RouterProcess> StartAsync(IEnumerable<string> args, IDictionary<string, string>? environment = null) =>
        new(await ProgramProcess.StartAsync("VllmStack.Router", "Router",
            ["--host", "127.0.0.1", "--port", "0", "--engine-stats-interval", "0.2", "--Router:ModelRefreshInterval=0.5", "--Router:HealthProbeInterval=0.5", .. args],
            environment));

    public async Task<IReadOnlyList<PrometheusSample>> MetricsAsync() => PrometheusTextParser.Parse(await Http.GetStringAsync("metrics"));

    /// <summary>Polls <c>/engines</c> until <paramref name="condition"/> holds on its JSON (bounded).</summary>
    public async Task<System.Text.Json.Nodes.JsonNode> WaitForEnginesAsync(Func<System.Text.Json.Nodes.JsonArray, bool> condition, TimeSpan timeout, string what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        System.Text.Json.Nodes.JsonNode? last = null;
        while (clock.Elapsed < timeout)
        {
            last = System.Text.Json.Nodes.JsonNode.Parse(await Http.GetStringAsync("engines"))!;
            if (condition(last["engines"]!.AsArray()))
            {
                return last;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"/engines never showed {what} within {timeout}; last: {last?.ToJsonString()}\n{Output}");
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _program.DisposeAsync();
    }
}
