using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using VllmStack.Hosting.Vllm;

namespace VllmStack.Tests.Infrastructure;

/// <summary>Starting Aspire apps in tests (the AppHost's own model, or one built in the test) and reading their state.</summary>
internal static partial class AspireApps
{
    /// <summary>The model the AppHost serves unless told otherwise.</summary>
    public const string DefaultModel = "meta-llama/Llama-3.1-8B-Instruct";

    /// <summary>
    /// The AppHost's model, started by Aspire's testing builder with random ports, and waited for: the router healthy and
    /// routing to <paramref name="engines"/> engines. With <paramref name="dashboard"/>, the Aspire dashboard runs too
    /// (on free loopback ports, with Aspire's browser token) and the services export their telemetry to it.
    /// </summary>
    public static async Task<DistributedApplication> StartAppHostAsync(IEnumerable<string> args, bool dashboard, int engines, CancellationToken cancellationToken)
    {
        string[] allArgs = ["--Parameters:engine-preset=fast", .. args, .. dashboard ? DashboardArgs() : []];
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.VllmStack_AppHost>(allArgs,
            (options, _) => options.DisableDashboard = !dashboard, cancellationToken);
        var app = await builder.BuildAsync(cancellationToken);
        try
        {
            await app.StartAsync(cancellationToken);
            await app.ResourceNotifications.WaitForResourceHealthyAsync("router", cancellationToken);
            using var router = app.CreateHttpClientWithoutRetries("router");
            await WaitForRoutableEnginesAsync(router, engines, cancellationToken);
            return app;
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// An HttpClient for the resource's <c>http</c> endpoint that sends each request once. The testing builder's own
    /// (<c>CreateHttpClient</c>) carry the standard resilience handler, which retries 5xx answers and timeouts: a test of
    /// status codes, of failures while scaling or of a client's retries must see what the service really answered.
    /// </summary>
    public static HttpClient CreateHttpClientWithoutRetries(this DistributedApplication app, string resource) =>
        new() { BaseAddress = app.GetEndpoint(resource, "http"), Timeout = TimeSpan.FromSeconds(100) };

    /// <summary>
    /// Configuration that puts the dashboard, its OTLP receiver and its resource service on ports the OS picks (no race
    /// with other tests for a port chosen in advance), over plain HTTP on loopback.
    /// </summary>
    public static string[] DashboardArgs() =>
    [
        "--ASPNETCORE_URLS=http://127.0.0.1:0",
        "--ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL=http://127.0.0.1:0",
        "--ASPIRE_RESOURCE_SERVICE_ENDPOINT_URL=http://127.0.0.1:0",
        "--ASPIRE_ALLOW_UNSECURED_TRANSPORT=true",
    ];

    /// <summary>Ports free on 127.0.0.1 a moment ago (the OS may hand one out again, but rarely within seconds).</summary>
    public static int[] FreeLoopbackPorts(int count)
    {
        var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        try
        {
            listeners.ForEach(l => l.Start());
            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            listeners.ForEach(l => l.Stop());
        }
    }

    /// <summary>The router's <c>/engines</c> once exactly <paramref name="count"/> of them are routable.</summary>
    public static async Task<JsonArray> WaitForRoutableEnginesAsync(HttpClient router, int count, CancellationToken cancellationToken)
    {
        while (true)
        {
            var engines = JsonNode.Parse(await router.GetStringAsync("engines", cancellationToken))!["engines"]!.AsArray();
            if (engines.Count(e => e!["routable"]!.GetValue<bool>()) == count)
            {
                return engines;
            }
            await Task.Delay(100, cancellationToken);
        }
    }

    /// <summary>The resource's current snapshot (its only replica's, for a resource that has one).</summary>
    public static CustomResourceSnapshot Snapshot(this DistributedApplication app, string resource) =>
        app.ResourceNotifications.TryGetCurrentState(resource, out var current) && current is not null
            ? current.Snapshot
            : throw new InvalidOperationException($"No resource '{resource}' has reported a state.");

    /// <summary>The id of the process DCP started for the resource (for a project: its <c>dotnet run</c>), if it runs.</summary>
    public static int? ProcessId(this DistributedApplication app, string resource) => ProcessId(app.Snapshot(resource));

    public static int? ProcessId(CustomResourceSnapshot snapshot) =>
        snapshot.Properties.FirstOrDefault(p => p.Name == "executable.pid")?.Value switch
        {
            int pid => pid,
            long pid => (int)pid,
            string text when int.TryParse(text, CultureInfo.InvariantCulture, out var pid) => pid,
            _ => null,
        };

    /// <summary>
    /// The program itself of a project resource: DCP runs a project as <c>dotnet run --no-build</c>, whose one child is
    /// the built program. Null while it is not running.
    /// </summary>
    public static int? ProgramProcessId(this DistributedApplication app, string resource) =>
        app.ProcessId(resource) is { } runner
            ? ProcessTree.Children(runner).FirstOrDefault(child => !ProcessTree.CommandLine(child).StartsWith("dotnet run", StringComparison.Ordinal)) is var id and > 0 ? id : null
            : null;

    /// <summary>An engine group's controller, as the dashboard's commands and the autoscaler reach it.</summary>
    public static EngineGroupController EngineGroup(this DistributedApplication app, string name) =>
        app.Services.GetRequiredService<EngineGroupRegistry>().Find(name) ?? throw new InvalidOperationException($"No engine group '{name}'.");

    /// <summary>Every line the resource has written so far (console output, both streams), without Aspire's timestamps.</summary>
    public static async Task<List<string>> LogsAsync(this DistributedApplication app, string resource, CancellationToken cancellationToken)
    {
        var logs = app.Services.GetRequiredService<ResourceLoggerService>();
        var model = app.Services.GetRequiredService<DistributedApplicationModel>().Resources.Single(r => r.Name == resource);
        var lines = new List<string>();
        await foreach (var batch in logs.GetAllAsync(model).WithCancellation(cancellationToken))
        {
            // Aspire keeps each line with its timestamp in front: "2026-11-30T10:17:42.7535310Z text".
            lines.AddRange(batch.Select(l => LogTimestamp().Replace(l.Content, "", 1)));
        }
        return lines;
    }

    /// <summary>
    /// Whether the resource writes a line containing <paramref name="text"/> within <paramref name="bound"/> (console
    /// output reaches Aspire's log service a moment after it is written).
    /// </summary>
    public static async Task<bool> WaitForLogAsync(this DistributedApplication app, string resource, string text, TimeSpan bound, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + bound;
        while (true)
        {
            if ((await app.LogsAsync(resource, cancellationToken)).Any(line => line.Contains(text, StringComparison.Ordinal)))
            {
                return true;
            }
            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }
            await Task.Delay(200, cancellationToken);
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\d{4}-\d\d-\d\dT[\d:.]+Z ")]
    private static partial System.Text.RegularExpressions.Regex LogTimestamp();

    /// <summary>Runs a resource command (Aspire's own, such as <c>resource-stop</c>, or one of ours) and requires success.</summary>
    public static async Task ExecuteCommandAsync(this DistributedApplication app, string resource, string command, CancellationToken cancellationToken)
    {
        var result = await app.ResourceCommands.ExecuteCommandAsync(resource, command, cancellationToken);
        Assert.True(result.Success, $"command {command} on {resource}: {result.Message}");
    }
}
