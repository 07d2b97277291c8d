using VllmStack.Tests.Infrastructure;
using static VllmStack.Tests.Publishing.PublishedManifests;

namespace VllmStack.Tests.Publishing;

/// <summary>
/// <c>aspire publish</c> — the Aspire CLI 13.6.5, a local tool of the repository (<c>dotnet tool restore</c>) — runs the
/// same publish step through its backchannel: options after the CLI's own pass through to the AppHost, and a bad one
/// fails the CLI with the reason. <c>--no-build</c> with the test run's configuration: the AppHost is built already, and
/// building it again here would rewrite files other tests are running.
/// </summary>
public sealed class AspireCliPublishTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);

    private readonly string _root = Path.Combine(Path.GetTempPath(), "vllmstack-cli-publish-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task Aspire_publish_writes_manifests_that_kustomize_builds_with_the_options_passed_through()
    {
        var output = Path.Combine(_root, "deploy");
        var run = await AspirePublishAsync(output, "--Kubernetes:Namespace=from-cli");
        Assert.True(run.ExitCode == 0, run.Output.Contains("dotnet-aspire does not exist", StringComparison.Ordinal)
            ? "The Aspire CLI is not restored: run `dotnet tool restore` in the repository root.\n" + run.Output
            : run.Output);
        Assert.Contains("kubectl apply -k", run.Output);
        var objects = ParseYaml(await KustomizeAsync(output));
        foreach (var workload in new[] { "engine", "router", "cacheserver", "autoscaler" })
        {
            Assert.Contains(objects, o => Kind(o) == "Deployment" && Name(o) == workload);
        }
        Assert.Contains(objects, o => Kind(o) == "StatefulSet" && Name(o) == "cache");
        Assert.All(objects.Where(o => Kind(o) != "Namespace"), o => Assert.Equal("from-cli", (string?)o["metadata"]!["namespace"]));
    }

    [Fact]
    public async Task Aspire_publish_with_a_bad_option_fails_with_the_reason()
    {
        var output = Path.Combine(_root, "deploy");
        var run = await AspirePublishAsync(output, "--Kubernetes:Namespace=Bad_NS");
        Assert.NotEqual(0, run.ExitCode);
        // The CLI wraps long lines at its width: look for the start of the reason.
        Assert.Contains("Kubernetes:Namespace 'Bad_NS' must be a DNS label", run.Output);
        Assert.Contains("Pipeline failed", run.Output);
        Assert.DoesNotContain("   at ", run.Output);
        Assert.False(Directory.Exists(output), "a failed publish wrote files");
    }

    /// <summary><c>dotnet aspire publish --apphost … -o OUTPUT --non-interactive --no-build ARGS</c>, from the repository root.</summary>
    private static Task<CommandRun> AspirePublishAsync(string output, params string[] args) =>
        ProgramProcess.RunToExitAsync("env",
        [
            // No update check against NuGet, no telemetry; the configuration the test run built (MSBuild reads it from the environment).
            "ASPIRE_VERSION_CHECK_DISABLED=true", "ASPIRE_CLI_TELEMETRY_OPTOUT=true", "DOTNET_CLI_TELEMETRY_OPTOUT=true", "NO_COLOR=1",
            $"Configuration={RepoPaths.Configuration}",
            "dotnet", "aspire", "publish", "--apphost", Path.Combine(RepoPaths.Root, "VllmStack.AppHost", "VllmStack.AppHost.csproj"),
            "--output-path", output, "--non-interactive", "--nologo", "--no-build", .. args,
        ], Bound, workingDirectory: RepoPaths.Root);
}
