using System.Diagnostics;
using System.Net.Http.Json;
using Aspire.Hosting;
using Aspire.Hosting.Testing;
using Microsoft.Playwright;
using VllmStack.Tests.Infrastructure;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace VllmStack.Tests.Hosting;

/// <summary>The Aspire dashboard of the running stack, in Debian's chromium: what a user sees when they open it.</summary>
[Collection(StackCollection.Name)]
public sealed class DashboardBrowserTests(StackFixture stack, ITestOutputHelper output)
{
    // Bounds for Playwright's auto-waiting: the dashboard's live updates, and telemetry's export interval plus a margin.
    private const float PageUpdateMs = 20_000;
    private const float TelemetryMs = 30_000;

    private static readonly string ScreenshotDirectory = Path.Combine(RepoPaths.Root, "VllmStack.Tests", "bin");

    private static readonly string[] RunningResources = ["cache", "cacheserver", "engine", "engine-0", "engine-1", "router", "autoscaler"];

    [Fact]
    public async Task The_dashboard_shows_every_resource_running_the_engines_simulated_and_a_chat_as_one_trace()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        // A chat under a trace id of our own (sampled), to find it among the others.
        var traceId = ActivityTraceId.CreateRandom();
        using (var router = stack.App.CreateHttpClient("router"))
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
            {
                Content = JsonContent.Create(new { model = AspireApps.DefaultModel, messages = new[] { new { role = "user", content = "Trace me" } }, max_tokens = 4 }),
            };
            request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");
            using var response = await router.SendAsync(request, cts.Token);
            response.EnsureSuccessStatusCode();
        }

        await using var chromium = await HeadlessChromium.LaunchAsync();
        var page = await chromium.NewPageAsync(TimeSpan.FromSeconds(30));
        try
        {
            // The URL Aspire gives carries the browser token when the dashboard asks for one.
            await page.GotoAsync(stack.DashboardUrl.ToString());
            await page.GotoAsync(new Uri(stack.DashboardUrl, "/").ToString());
            foreach (var name in RunningResources)
            {
                await Expect(State(page, name)).ToHaveAttributeAsync("title", "Running", new() { Timeout = PageUpdateMs });
            }
            // The group is shown as simulated, with its replicas up to the autoscaler's maximum declared under it.
            await Expect(Row(page, "engine")).ToContainTextAsync("simulated", new() { Timeout = PageUpdateMs });
            await Expect(Row(page, "engine-3")).ToHaveCountAsync(1);
            // Nothing for the user to dismiss on every start: no certificate or unsecured-endpoint warning.
            await Expect(page.Locator("body")).Not.ToContainTextAsync("development certificate");
            await Expect(page.Locator("body")).Not.ToContainTextAsync("Endpoint is unsecured");
            await SaveScreenshotAsync(page, "dashboard-resources.png");

            // One chat through the router is one trace: the router's request, and its call into an engine.
            await page.GotoAsync(new Uri(stack.DashboardUrl, $"/traces/detail/{traceId}").ToString());
            await Expect(page.Locator("td[title='router: POST /v1/chat/completions']")).ToHaveCountAsync(1, new() { Timeout = TelemetryMs });
            await Expect(page.Locator("td[title^='engine-'][title$=': POST /v1/chat/completions']")).ToHaveCountAsync(1, new() { Timeout = TelemetryMs });
            var path = await SaveScreenshotAsync(page, "dashboard-trace.png");
            output.WriteLine($"Trace screenshot: {path}");
        }
        catch
        {
            output.WriteLine($"Screenshot at failure: {await SaveScreenshotAsync(page, "dashboard-failure.png")}");
            // The dashboard is a resource of its own; what it logged says why a page failed.
            foreach (var line in (await stack.App.LogsAsync("aspire-dashboard", CancellationToken.None)).TakeLast(60))
            {
                output.WriteLine(line);
            }
            throw;
        }
    }

    /// <summary>The resources grid's row of a resource (its first cell's title is "Type: name").</summary>
    private static ILocator Row(IPage page, string resource) =>
        page.Locator("tr.resource-row", new() { Has = page.Locator($"td[col-index='1'][title$=': {resource}']") });

    private static ILocator State(IPage page, string resource) => Row(page, resource).Locator("td[col-index='2']");

    private static async Task<string> SaveScreenshotAsync(IPage page, string fileName)
    {
        var path = Path.Combine(ScreenshotDirectory, fileName);
        try
        {
            await page.ScreenshotAsync(new() { Path = path, FullPage = true, Timeout = 10_000 });
            return path;
        }
        catch (PlaywrightException e)
        {
            return $"(no screenshot: {e.Message})";
        }
    }
}
