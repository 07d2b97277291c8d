using Microsoft.Extensions.Logging.Abstractions;
using VllmStack.Router.Admission;
using VllmStack.Router.Configuration;
using VllmStack.Router.Engines;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Router;

/// <summary>The fair queue and the engine capacity estimate as pure logic; admission options checked at start-up.</summary>
public sealed class AdmissionUnitTests
{
    private static List<string> Drain(FairQueue<string> queue)
    {
        var order = new List<string>();
        while (queue.TryDequeue(out var item))
        {
            order.Add(item);
        }
        return order;
    }

    /// <summary>
    /// A tokens-per-minute limit refills at exactly its rate, and its Retry-After says when the shortfall is made up:
    /// 119 a minute is not rounded down to 60 (one a second), nor 400 to 360.
    /// </summary>
    [Theory]
    [InlineData(119, 103, 87)]
    [InlineData(400, 300, 200)]
    [InlineData(6000, 5000, 4000)]
    public async Task A_tokens_per_minute_limit_refills_at_its_own_rate(int perMinute, int first, int second)
    {
        var options = new RouterOptions();
        options.Admission.ClientTokensPerMinute = perMinute;
        using var gate = new AdmissionGate(options, new EngineRegistry([], options, NullLogger<EngineRegistry>.Instance), NullLogger<AdmissionGate>.Instance);
        var (lease, rejection) = await gate.AdmitAsync("m", new AdmissionTicket("client", 0, first), CancellationToken.None);
        Assert.Null(rejection);
        lease!.Dispose();
        (lease, rejection) = await gate.AdmitAsync("m", new AdmissionTicket("client", 0, second), CancellationToken.None);
        Assert.Null(lease);
        var shortfall = second - (perMinute - first);
        var due = TimeSpan.FromMinutes((double)shortfall / perMinute);
        Assert.InRange(rejection!.RetryAfter, due - TimeSpan.FromSeconds(2.5), due + TimeSpan.FromSeconds(2.5));
    }

    [Fact]
    public void Clients_are_served_in_turn_so_a_heavy_client_does_not_starve_a_light_one()
    {
        var queue = new FairQueue<string>();
        for (var i = 0; i < 5; i++)
        {
            queue.Enqueue("heavy", 0, $"h{i}");
        }
        queue.Enqueue("light", 0, "l0");
        queue.Enqueue("other", 0, "o0");
        queue.Enqueue("light", 0, "l1");
        Assert.Equal(8, queue.Count);
        Assert.Equal(3, queue.Clients);
        Assert.Equal(["h0", "l0", "o0", "h1", "l1", "h2", "h3", "h4"], Drain(queue));
        Assert.Equal(0, queue.Count);
        Assert.Equal(0, queue.Clients);
    }

    [Fact]
    public void A_client_that_comes_back_joins_the_end_of_the_line()
    {
        var queue = new FairQueue<string>();
        queue.Enqueue("a", 0, "a0");
        queue.Enqueue("b", 0, "b0");
        queue.Enqueue("b", 0, "b1");
        Assert.True(queue.TryDequeue(out var first));
        Assert.Equal("a0", first);
        queue.Enqueue("a", 0, "a1");
        Assert.Equal(["b0", "a1", "b1"], Drain(queue));
    }

    [Fact]
    public void Within_a_client_lower_priority_goes_first_then_arrival_order()
    {
        var queue = new FairQueue<string>();
        queue.Enqueue("c", 5, "p5");
        queue.Enqueue("c", 1, "p1-first");
        queue.Enqueue("c", -2, "p-2");
        queue.Enqueue("c", 1, "p1-second");
        queue.Enqueue("d", 9, "d9");
        Assert.Equal(["p-2", "d9", "p1-first", "p1-second", "p5"], Drain(queue));
    }

    [Fact]
    public void Removing_an_entry_takes_it_out_once_and_an_emptied_client_loses_its_turn()
    {
        var queue = new FairQueue<string>();
        var a0 = queue.Enqueue("a", 0, "a0");
        queue.Enqueue("b", 0, "b0");
        var b1 = queue.Enqueue("b", 0, "b1");
        Assert.True(queue.Remove(a0));
        Assert.False(queue.Remove(a0));
        Assert.False(a0.IsQueued);
        Assert.Equal(0, queue.CountFor("a"));
        Assert.Equal(1, queue.Clients);
        Assert.True(queue.Remove(b1));
        Assert.Equal(["b0"], Drain(queue));
        Assert.False(queue.Remove(b1));
        Assert.Equal(0, queue.Count);
    }

    [Fact]
    public void An_engines_batch_is_learnt_from_a_scrape_with_requests_waiting_raised_when_it_runs_more_and_never_lowered()
    {
        var engine = new Engine(1, new Uri("http://127.0.0.1:1/"));
        var options = new AdmissionOptions { MaxWaitingPerEngine = 2 };
        var capacity = new EngineCapacity();
        var at = DateTimeOffset.UtcNow;

        engine.SetLoad(new EngineLoad(3, 0, 0, 0, 3, at));
        Assert.Equal(double.PositiveInfinity, capacity.Room(engine, options));
        Assert.Null(capacity.Batch);

        // 4 running while 5 wait: the batch is 4; the limit is 4 + 2 waiting. 7 of the router's requests are in flight.
        engine.SetLoad(new EngineLoad(4, 5, 0, 0, 9, at.AddSeconds(1)));
        for (var i = 0; i < 7; i++)
        {
            engine.BeginRequest();
        }
        Assert.Equal(6 - 7, capacity.Room(engine, options));
        Assert.Equal(4, capacity.Batch);

        // A later scrape shows 6 running and none waiting: the batch was larger than it looked.
        engine.SetLoad(new EngineLoad(6, 0, 0, 0, 6, at.AddSeconds(2)));
        Assert.Equal(8 - 7, capacity.Room(engine, options));
        Assert.Equal(6, capacity.Batch);

        // Load the router did not send (another router, a direct client) takes room too.
        engine.SetLoad(new EngineLoad(6, 3, 0, 0, 7, at.AddSeconds(3)));
        Assert.Equal(8 - 2 - 7, capacity.Room(engine, options));
        Assert.Equal(6, capacity.Batch);

        // A scrape between scheduler steps (new arrivals still waiting beside a batch not full) does not lower it.
        engine.SetLoad(new EngineLoad(3, 2, 0, 0, 5, at.AddSeconds(4)));
        Assert.Equal(8 - 0 - 7, capacity.Room(engine, options));
        Assert.Equal(6, capacity.Batch);

        // A fixed limit replaces the learnt one.
        Assert.Equal(10 - 0 - 7, capacity.Room(engine, new AdmissionOptions { MaxInFlightPerEngine = 10 }));
    }

    [Fact]
    public void Admission_options_are_validated_with_the_routers_other_options()
    {
        Assert.Empty(new RouterOptions().Validate());
        Assert.Contains(new RouterOptions { Admission = new AdmissionOptions { MaxQueueWait = 0 } }.Validate(), p => p.Contains("--max-queue-wait", StringComparison.Ordinal));
        Assert.Contains(new RouterOptions { Admission = new AdmissionOptions { MaxQueueSize = -1 } }.Validate(), p => p.Contains("must not be negative", StringComparison.Ordinal));
        Assert.Contains(new AdmissionOptions { MaxWaitingPerEngine = 0 }.Validate(), p => p.Contains("--max-waiting-per-engine", StringComparison.Ordinal));
        Assert.Empty(new AdmissionOptions { MaxWaitingPerEngine = 0, MaxInFlightPerEngine = 4 }.Validate());
    }

    [Fact]
    public async Task The_router_refuses_to_start_with_a_bad_admission_option_and_says_why()
    {
        var run = await ProgramProcess.RunToExitAsync("dotnet",
            [RepoPaths.ProgramDll("VllmStack.Router"), "--host", "127.0.0.1", "--port", "0", "--admission-control", "true", "--max-queue-wait", "-3"], TimeSpan.FromSeconds(60));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--max-queue-wait must be more than 0 and at most 3600 seconds", run.Output, StringComparison.Ordinal);
    }
}
