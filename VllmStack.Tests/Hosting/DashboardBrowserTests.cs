using Microsoft.Playwright;
using VllmStack.AppHost;
using VllmStack.Hosting.Orchestration;
using VllmStack.Hosting.Testing;
using VllmStack.Tests.Infrastructure;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace VllmStack.Tests.Hosting;

/// <summary>
/// The dashboard in a real browser against the real stack: what it shows comes from running processes, and what
/// its buttons do happens to them.
/// </summary>
public sealed class DashboardBrowserTests(ITestOutputHelper output)
{
    // Bounds for Playwright's auto-waiting: a page update (one poll), and a process starting or stopping.
    private const float PageUpdateMs = 15_000;
    private const float ProcessChangeMs = 60_000;

    private static readonly string ScreenshotDirectory = Path.Combine(RepoPaths.Root, "VllmStack.Tests", "bin");

    [Fact]
    public async Task Dashboard_shows_the_running_stack_and_controls_it()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var builder = DistributedApplicationTestingBuilder.Create<AppModel>("--Parameters:engine-preset=fast");
        builder.Options.DashboardUrl = "http://127.0.0.1:0";
        await using var app = builder.Build();
        await app.StartAsync(cts.Token);
        await app.WaitForResourceHealthyAsync("router", cts.Token);

        await using var chromium = await HeadlessChromium.LaunchAsync();
        var page = await chromium.NewPageAsync(TimeSpan.FromSeconds(20));
        var scriptErrors = CollectScriptErrors(page);
        try
        {
            await page.GotoAsync(app.DashboardUrl!.ToString());

            await ExpectEveryResourceRunningAndHealthyAsync(page, app);
            await ExpectEngineShownAsSimulatedWithTwoReplicasAsync(page);
            await ExpectEngineLogsFollowedAsync(page, app);
            await SaveScreenshotAsync(page, "dashboard-console.png");

            await page.GetByRole(AriaRole.Link, new() { Name = "Resources", Exact = true }).ClickAsync();
            await ExpectStopThenStartOfRouterAsync(page);
            await ExpectEngineScaledToThreeAsync(page);

            var path = await SaveScreenshotAsync(page, "dashboard.png");
            output.WriteLine($"Dashboard screenshot: {path}");
            Assert.Empty(scriptErrors);
        }
        catch
        {
            output.WriteLine($"Screenshot at failure: {await SaveScreenshotAsync(page, "dashboard-failure.png")}");
            output.WriteLine("Script errors: " + string.Join(" | ", scriptErrors));
            throw;
        }
    }

    private static async Task ExpectEveryResourceRunningAndHealthyAsync(IPage page, DistributedApplication app)
    {
        var names = app.Runtime.Snapshots.Select(s => s.Name).ToList();
        Assert.Contains("engine", names);
        Assert.Contains("router", names);
        await Expect(page.Locator("#resources tbody tr[data-resource]")).ToHaveCountAsync(names.Count, new() { Timeout = PageUpdateMs });
        foreach (var name in names)
        {
            // Some resources (e.g. ones nothing waits for) may still be settling when the router is healthy.
            await Expect(Field(page, name, "state-value")).ToHaveTextAsync("Running", new() { Timeout = ProcessChangeMs });
            await Expect(Field(page, name, "health-value")).ToHaveTextAsync("Healthy", new() { Timeout = ProcessChangeMs });
        }
    }

    private static async Task ExpectEngineShownAsSimulatedWithTwoReplicasAsync(IPage page)
    {
        await Expect(Field(page, "engine", "replica-count")).ToHaveTextAsync("2/2", new() { Timeout = PageUpdateMs });
        await Expect(Row(page, "engine").Locator(".replica-list li")).ToHaveCountAsync(2, new() { Timeout = PageUpdateMs });
        await Expect(Field(page, "engine", "simulated")).ToBeVisibleAsync(new() { Timeout = PageUpdateMs });
        await Expect(Field(page, "engine", "runs-as")).ToContainTextAsync("EngineSim", new() { Timeout = PageUpdateMs });
        await Expect(Field(page, "router", "simulated")).ToBeHiddenAsync(new() { Timeout = PageUpdateMs });
    }

    private static async Task ExpectEngineLogsFollowedAsync(IPage page, DistributedApplication app)
    {
        await page.GetByRole(AriaRole.Link, new() { Name = "Console logs of engine", Exact = true }).ClickAsync();
        var console = page.Locator("#console-lines");
        await Expect(console).ToBeVisibleAsync(new() { Timeout = PageUpdateMs });
        await Expect(console).ToContainTextAsync("EngineSim", new() { Timeout = PageUpdateMs });
        // Both replicas' output, each line tagged with its replica.
        foreach (var replica in new[] { 0, 1 })
        {
            await Expect(console.Locator($".line[data-replica='{replica}']", new() { HasText = "EngineSim" }).First)
                .ToBeVisibleAsync(new() { Timeout = PageUpdateMs });
        }
        // A line written now must appear without reopening the panel, marked as stderr.
        const string Marker = "dashboard-test: a line on stderr";
        app.Logs.Write("engine", 1, isError: true, Marker);
        var errorLine = console.Locator(".line.stderr[data-replica='1']", new() { HasText = Marker });
        await Expect(errorLine).ToHaveCountAsync(1, new() { Timeout = PageUpdateMs });
    }

    private static async Task ExpectStopThenStartOfRouterAsync(IPage page)
    {
        await page.GetByRole(AriaRole.Button, new() { Name = "Stop router", Exact = true }).ClickAsync();
        await Expect(Field(page, "router", "state-value")).ToHaveTextAsync("Finished", new() { Timeout = ProcessChangeMs });

        await page.GetByRole(AriaRole.Button, new() { Name = "Start router", Exact = true }).ClickAsync();
        await Expect(Field(page, "router", "state-value")).ToHaveTextAsync("Running", new() { Timeout = ProcessChangeMs });
        await Expect(Field(page, "router", "health-value")).ToHaveTextAsync("Healthy", new() { Timeout = ProcessChangeMs });
    }

    private static async Task ExpectEngineScaledToThreeAsync(IPage page)
    {
        await page.GetByRole(AriaRole.Button, new() { Name = "Add one replica of engine", Exact = true }).ClickAsync();
        await Expect(Field(page, "engine", "replica-count")).ToHaveTextAsync("3/3", new() { Timeout = ProcessChangeMs });
        await Expect(Row(page, "engine").Locator(".replica-list li")).ToHaveCountAsync(3, new() { Timeout = PageUpdateMs });
        await Expect(Field(page, "engine", "health-value")).ToHaveTextAsync("Healthy", new() { Timeout = ProcessChangeMs });
    }

    private static ILocator Row(IPage page, string resource) => page.Locator($"#resources tr[data-resource='{resource}']");

    private static ILocator Field(IPage page, string resource, string field) => Row(page, resource).Locator($"[data-field='{field}']");

    /// <summary>Uncaught exceptions and console errors of the page: a working dashboard has none.</summary>
    private static List<string> CollectScriptErrors(IPage page)
    {
        var errors = new List<string>();
        page.PageError += (_, error) => { lock (errors) { errors.Add(error); } };
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                lock (errors) { errors.Add(message.Text); }
            }
        };
        return errors;
    }

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
