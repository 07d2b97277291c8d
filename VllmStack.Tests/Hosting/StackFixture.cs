using Aspire.Hosting;
using Aspire.Hosting.Testing;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Hosting;

/// <summary>
/// The AppHost's own stack, started once by Aspire's testing builder with the dashboard and shared by the tests of
/// <see cref="StackCollection"/>: Redis, the cache server, two simulated engines, the router and the autoscaler. Tests
/// that change it (kill a replica, scale) put it back as they found it: two healthy engines in the router.
/// </summary>
public sealed class StackFixture : IAsyncLifetime
{
    private static readonly TimeSpan StartBound = TimeSpan.FromSeconds(120);

    public DistributedApplication App { get; private set; } = null!;

    public Uri DashboardUrl { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(StartBound);
        App = await AspireApps.StartAppHostAsync([], dashboard: true, engines: 2, cts.Token);
        DashboardUrl = await App.GetDashboardUrlAsync(cts.Token) ?? throw new InvalidOperationException("The dashboard has no URL.");
    }

    public async Task DisposeAsync() => await App.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class StackCollection : ICollectionFixture<StackFixture>
{
    public const string Name = "AppHost stack";
}
