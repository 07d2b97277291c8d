using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using VllmStack.AppHost;
using VllmStack.Hosting.Orchestration;
using VllmStack.Hosting.Testing;
using static VllmStack.Tests.Publishing.PublishedManifests;

namespace VllmStack.Tests.Publishing;

/// <summary>
/// Every metric the published Grafana dashboard queries is one that a running local stack exposes: the AppHost's own model
/// starts, serves a few requests, and the router, engines, cache server and autoscaler are scraped.
/// </summary>
public sealed partial class GrafanaDashboardMetricsTests(PublishedManifests published) : IClassFixture<PublishedManifests>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Every_metric_the_dashboard_queries_is_exposed_by_a_running_local_stack()
    {
        var dashboard = JsonNode.Parse((string)published.Get("ConfigMap", "vllmstack-grafana-dashboard")["data"]!["vllmstack-dashboard.json"]!)!;
        var queried = KubernetesPublisherTests.DashboardQueries(dashboard).SelectMany(MetricNames).ToHashSet();
        Assert.True(queried.Count >= 15, $"only {queried.Count} metric names found in the dashboard's queries");

        using var cts = new CancellationTokenSource(Bound);
        var builder = DistributedApplicationTestingBuilder.Create<AppModel>("--Parameters:engine-preset=fast", "--Parameters:engine-replicas=1");
        await using var app = builder.Build();
        await app.StartAsync(cts.Token);
        await app.WaitForResourceHealthyAsync("router", cts.Token);
        await app.WaitForResourceHealthyAsync("autoscaler", cts.Token);
        using var router = app.CreateHttpClient("router");
        await WaitForRoutableEngineAsync(router, cts.Token);
        for (var i = 0; i < 3; i++)
        {
            using var response = await router.PostAsJsonAsync("v1/chat/completions", new
            {
                model = AppModel.DefaultModel,
                messages = new[] { new { role = "user", content = $"Say something about number {i}." } },
                max_tokens = 8,
                stream = true,
            }, cts.Token);
            response.EnsureSuccessStatusCode();
            await response.Content.ReadAsStringAsync(cts.Token);
        }

        var exposed = new HashSet<string>(StringComparer.Ordinal);
        var engineSeries = new List<string>();
        foreach (var resource in new[] { "router", "engine", "cacheserver", "autoscaler" })
        {
            foreach (var url in app.Runtime.Endpoints(app.Resources.Single(r => r.Name == resource)))
            {
                using var http = new HttpClient { BaseAddress = url, Timeout = TimeSpan.FromSeconds(10) };
                var text = await http.GetStringAsync("metrics", cts.Token);
                exposed.UnionWith(ExposedNames(text));
                if (resource == "engine")
                {
                    engineSeries.AddRange(text.Split('\n').Where(l => !l.StartsWith('#')));
                }
            }
        }
        Assert.Equal([], queried.Where(name => !exposed.Contains(name)).Order());
        // The dashboard tells the engines' series from the router's copies by model_name; the engines' carry it.
        Assert.Contains(engineSeries, l => l.StartsWith("vllm:num_requests_running{", StringComparison.Ordinal) && l.Contains($"model_name=\"{AppModel.DefaultModel}\"", StringComparison.Ordinal));
    }

    /// <summary>Names a scraper sees: every family of a <c># TYPE</c> line (histograms with their series suffixes) and every series.</summary>
    private static IEnumerable<string> ExposedNames(string exposition)
    {
        foreach (var line in exposition.Split('\n'))
        {
            if (TypeLine().Match(line) is { Success: true } type)
            {
                var name = type.Groups[1].Value;
                yield return name;
                if (type.Groups[2].Value == "histogram")
                {
                    yield return name + "_bucket";
                    yield return name + "_sum";
                    yield return name + "_count";
                }
            }
            else if (line.Length > 0 && line[0] != '#')
            {
                yield return SeriesName().Match(line).Value;
            }
        }
    }

    /// <summary>Metric names in a PromQL expression: every identifier with a colon (all of ours and vLLM's have one).</summary>
    private static IEnumerable<string> MetricNames(string promql) => MetricName().Matches(promql).Select(m => m.Value);

    private static async Task WaitForRoutableEngineAsync(HttpClient router, CancellationToken cancellationToken)
    {
        while (!JsonNode.Parse(await router.GetStringAsync("engines", cancellationToken))!["engines"]!.AsArray().Any(e => e!["routable"]!.GetValue<bool>()))
        {
            await Task.Delay(100, cancellationToken);
        }
    }

    [GeneratedRegex(@"^# TYPE (\S+) (\S+)")]
    private static partial Regex TypeLine();

    [GeneratedRegex(@"^[^{\s]+")]
    private static partial Regex SeriesName();

    [GeneratedRegex(@"\b[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+")]
    private static partial Regex MetricName();
}
