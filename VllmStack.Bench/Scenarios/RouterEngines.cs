using System.Diagnostics;
using System.Text.Json.Nodes;

namespace VllmStack.Bench.Scenarios;

/// <summary>The router's view of its engines (<c>GET /engines</c>), polled until a scenario's stack is in the state it needs.</summary>
public static class RouterEngines
{
    /// <summary>Polls every 100 ms until <paramref name="condition"/> holds for the <c>engines</c> array; a TimeoutException after 60 s.</summary>
    public static async Task WaitAsync(Uri router, Func<JsonArray, bool> condition, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = router, Timeout = TimeSpan.FromSeconds(10) };
        var clock = Stopwatch.StartNew();
        while (!condition(JsonNode.Parse(await http.GetStringAsync("engines", cancellationToken))!["engines"]!.AsArray()))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException("the router's engines did not reach the expected state within 60 s");
            }
            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>Until <paramref name="count"/> engines are routable.</summary>
    public static Task WaitRoutableAsync(Uri router, int count, CancellationToken cancellationToken) =>
        WaitAsync(router, e => e.Count(x => x!["routable"]!.GetValue<bool>()) == count, cancellationToken);
}
