using System.Diagnostics;
using System.Text.RegularExpressions;
using VllmStack.Tests.Infrastructure;
using Xunit.Abstractions;

namespace VllmStack.Tests.Hosting;

/// <summary>
/// Run alone (no other test starts processes meanwhile), so that every process that appears while one of these tests
/// runs is the stack's.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessLifetimeCollection
{
    public const string Name = "Process lifetimes";
}

/// <summary>
/// The stack's processes end with it: disposing a testing app, stopping the AppHost with SIGTERM or Ctrl-C, and — once
/// the AppHost itself is killed — DCP, which watches it, stopping what it started.
/// </summary>
[Collection(ProcessLifetimeCollection.Name)]
public sealed class StackLifetimeTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(150);

    [Fact]
    public async Task Disposing_the_testing_app_leaves_no_process_behind()
    {
        using var cts = new CancellationTokenSource(Bound);
        var before = ProcessTree.Of(Environment.ProcessId);
        var app = await AspireApps.StartAppHostAsync([], dashboard: false, engines: 2, cts.Token);
        HashSet<int> started;
        try
        {
            started = [.. ProcessTree.Of(Environment.ProcessId).Except(before)];
            // DCP (API server, controllers, process monitors), Redis, the cache server, two engines, router, autoscaler.
            Assert.True(started.Count >= 8, $"only these processes: {ProcessTree.Describe(started)}");
        }
        finally
        {
            await app.DisposeAsync();
        }
        var clock = Stopwatch.StartNew();
        var alive = await ProcessTree.WaitForExitAsync(started, TimeSpan.FromSeconds(30));
        Assert.True(alive.Count == 0, $"still running after dispose: {ProcessTree.Describe(alive)}");
        output.WriteLine($"{started.Count} processes; the last ended {clock.Elapsed.TotalSeconds:F1} s after dispose returned");
    }

    [Theory]
    [InlineData("TERM")]
    [InlineData("INT")]
    public async Task The_apphost_serves_and_stops_everything_on_a_signal(string signal)
    {
        using var cts = new CancellationTokenSource(Bound);
        await using var host = await StartAppHostAsync(cts.Token);
        var started = ProcessTree.Of(host.ProcessId);

        var clock = Stopwatch.StartNew();
        Assert.True(await host.SignalAsync(signal, TimeSpan.FromSeconds(60)), $"the AppHost exits on SIG{signal}");
        var exited = clock.Elapsed;
        var alive = await ProcessTree.WaitForExitAsync(started, TimeSpan.FromSeconds(30));
        Assert.True(alive.Count == 0, $"still running after the AppHost exited: {ProcessTree.Describe(alive)}");
        output.WriteLine($"SIG{signal}: the AppHost exited after {exited.TotalSeconds:F1} s, its {started.Count} processes after {clock.Elapsed.TotalSeconds:F1} s");
    }

    [Fact]
    public async Task After_the_apphost_is_killed_dcp_stops_everything_it_started()
    {
        using var cts = new CancellationTokenSource(Bound);
        await using var host = await StartAppHostAsync(cts.Token);
        var started = ProcessTree.Of(host.ProcessId);

        var clock = Stopwatch.StartNew();
        Assert.True(await host.SignalAsync("KILL", TimeSpan.FromSeconds(10)));
        var alive = await ProcessTree.WaitForExitAsync(started, TimeSpan.FromSeconds(60));
        Assert.True(alive.Count == 0, $"still running a minute after the AppHost was killed: {ProcessTree.Describe(alive)}");
        output.WriteLine($"SIGKILL: DCP had stopped all {started.Count} processes {clock.Elapsed.TotalSeconds:F1} s after the AppHost died");
    }

    /// <summary>
    /// The built AppHost as a user runs it (the launch profile's settings, free ports), once the router streams a chat.
    /// </summary>
    private static async Task<ProgramProcess> StartAppHostAsync(CancellationToken cancellationToken)
    {
        // The router's port must be known in advance; the dashboard's ports the OS picks.
        var routerPort = AspireApps.FreeLoopbackPorts(1)[0];
        var environment = new Dictionary<string, string>
        {
            ["DOTNET_ENVIRONMENT"] = "Development",
            ["ASPIRE_VERSION_CHECK_DISABLED"] = "true",
        };
        string[] args = ["--Parameters:engine-preset=fast", $"--Parameters:router-port={routerPort}", .. AspireApps.DashboardArgs()];
        var host = await ProgramProcess.StartAsync("VllmStack.AppHost", new Regex(@"Login to the dashboard at (\S+)"), args, environment, TimeSpan.FromSeconds(60));
        try
        {
            using var router = new HttpClient { BaseAddress = new Uri($"http://localhost:{routerPort}/"), Timeout = TimeSpan.FromSeconds(10) };
            while (true)
            {
                try
                {
                    await AspireApps.WaitForRoutableEnginesAsync(router, 2, cancellationToken);
                    break;
                }
                catch (Exception e) when (e is HttpRequestException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
                {
                    // The router is not up yet: nothing listens, or DCP's proxy holds the connection until it is.
                    await Task.Delay(200, cancellationToken);
                }
            }
            var streamed = await OpenAiHttp.StreamAsync(router, "v1/chat/completions",
                new { model = AspireApps.DefaultModel, messages = new[] { new { role = "user", content = "hi" } }, max_tokens = 5, stream = true }, cancellationToken);
            Assert.False(string.IsNullOrEmpty(streamed.Text));
            return host;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }
}
