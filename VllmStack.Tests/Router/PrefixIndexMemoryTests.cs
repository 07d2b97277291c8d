using VllmStack.Router.Routing;
using Xunit.Abstractions;
using static VllmStack.Tests.Router.RoutingTestEngines;

namespace VllmStack.Tests.Router;

/// <summary>
/// Runs alone: <see cref="GC.GetTotalMemory(bool)"/> is process-wide, so tests running in parallel would
/// add their own allocations to the measurement.
/// </summary>
[CollectionDefinition(nameof(PrefixIndexMemoryCollection), DisableParallelization = true)]
public sealed class PrefixIndexMemoryCollection;

[Collection(nameof(PrefixIndexMemoryCollection))]
public sealed class PrefixIndexMemoryTests(ITestOutputHelper output)
{
    private const int Capacity = 65_536;
    private const int Prompts = 1_000_000;

    [Fact]
    public void The_index_stays_under_its_cap_through_a_million_distinct_prompts()
    {
        var engines = Create(4);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var policy = new PrefixAwarePolicy(new PrefixRoutingOptions { ChunkSize = 16, MaxIndexEntries = Capacity });

        for (var i = 0; i < Prompts; i++)
        {
            // Two whole chunks per prompt, the first already unique: two million distinct entries offered.
            policy.Choose(Request(prompt: $"prompt {i,9} of the load test"), engines);
        }
        var after = GC.GetTotalMemory(forceFullCollection: true);

        Assert.Equal(Capacity, policy.Index.Count);
        // About 50 bytes per entry of capacity; an index keeping every entry would need 2M x that, ~100 MB.
        Assert.InRange(policy.Index.EstimatedBytes, Capacity * 40L, Capacity * 80L);
        var growth = after - before;
        output.WriteLine($"estimated {policy.Index.EstimatedBytes:N0} bytes, measured growth {growth:N0} bytes");
        // The heap is the process's: other tests' background work (process output readers, connection pools, timers
        // of stacks still shutting down) adds megabytes now and then. The bound leaves room for that and still fails
        // an index that keeps what it was offered (~100 MB) by a wide margin.
        Assert.True(growth <= Capacity * 400L, $"managed memory grew by {growth:N0} bytes");
        GC.KeepAlive(policy);
    }
}
