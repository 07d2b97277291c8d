using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Aspire.Hosting.Testing;
using VllmStack.Tests.Hosting;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Publishing;

/// <summary>
/// Every metric the published Grafana dashboard queries is one that a running local stack exposes: the AppHost's own model
/// (the shared stack) serves a few requests, and the router, engines, cache server and autoscaler are scraped.
/// </summary>
[Collection(StackCollection.Name)]
public sealed partial class GrafanaDashboardMetricsTests(StackFixture stack, PublishedManifests published) : IClassFixture<PublishedManifests>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task Every_metric_the_dashboard_queries_is_exposed_by_a_running_local_stack()
    {
        var dashboard = JsonNode.Parse((string)published.Get("ConfigMap", "vllmstack-grafana-dashboard")["data"]!["vllmstack-dashboard.json"]!)!;
        var queried = KubernetesPublisherTests.DashboardQueries(dashboard).SelectMany(MetricNames).ToHashSet();
        Assert.True(queried.Count >= 15, $"only {queried.Count} metric names found in the dashboard's queries");

        using var cts = new CancellationTokenSource(Bound);
        var app = stack.App;
        using var router = app.CreateHttpClient("router");
        for (var i = 0; i < 3; i++)
        {
            using var response = await router.PostAsJsonAsync("v1/chat/completions", new
            {
                model = AspireApps.DefaultModel,
                messages = new[] { new { role = "user", content = $"Say something about number {i}." } },
                max_tokens = 8,
                stream = true,
            }, cts.Token);
            response.EnsureSuccessStatusCode();
            await response.Content.ReadAsStringAsync(cts.Token);
        }

        var exposed = new HashSet<string>(StringComparer.Ordinal);
        var engineSeries = new List<string>();
        foreach (var resource in new[] { "router", "engine-0", "engine-1", "cacheserver", "autoscaler" })
        {
            using var http = new HttpClient { BaseAddress = app.GetEndpoint(resource, "http"), Timeout = TimeSpan.FromSeconds(10) };
            var text = await http.GetStringAsync("metrics", cts.Token);
            exposed.UnionWith(ExposedNames(text));
            if (resource.StartsWith("engine", StringComparison.Ordinal))
            {
                engineSeries.AddRange(text.Split('\n').Where(l => !l.StartsWith('#')));
            }
        }
        Assert.Equal([], queried.Where(name => !exposed.Contains(name)).Order());
        // The dashboard tells the engines' series from the router's copies by model_name; the engines' carry it.
        Assert.Contains(engineSeries, l => l.StartsWith("vllm:num_requests_running{", StringComparison.Ordinal) && l.Contains($"model_name=\"{AspireApps.DefaultModel}\"", StringComparison.Ordinal));
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

    [GeneratedRegex(@"^# TYPE (\S+) (\S+)")]
    private static partial Regex TypeLine();

    [GeneratedRegex(@"^[^{\s]+")]
    private static partial Regex SeriesName();

    [GeneratedRegex(@"\b[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+")]
    private static partial Regex MetricName();
}
