using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;
using VllmStack.EngineSim.Metrics;

namespace VllmStack.Tests.EngineSim;

/// <summary>The scheduler on its own: admission, FCFS, LoRA slots, preemption and release.</summary>
public sealed class SchedulerTests : IDisposable
{
    private readonly EngineMetrics _metrics = new(new EngineOptions { Model = "m" });

    public void Dispose() => _metrics.Dispose();

    private Scheduler Create(int blocks, int blockSize = 4, int maxNumSeqs = 8, int maxLoras = 1) =>
        new(new KvBlockPool(blocks, blockSize, true), maxNumSeqs, maxLoras, _metrics);

    private static Sequence Seq(int length, string? lora = null, int offset = 0) =>
        new([.. Enumerable.Range(offset, length)], lora, 42);

    [Fact]
    public async Task Sequences_beyond_max_num_seqs_wait_until_one_finishes()
    {
        var scheduler = Create(blocks: 64, maxNumSeqs: 2);
        var a = Seq(4);
        var b = Seq(4);
        var c = Seq(4);
        await scheduler.AdmitAsync(a, default);
        await scheduler.AdmitAsync(b, default);
        var third = scheduler.AdmitAsync(c, default);
        Assert.False(third.IsCompleted);
        Assert.Equal((2, 1), (scheduler.Snapshot().Running, scheduler.Snapshot().Waiting));

        scheduler.Release(a);
        await third.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal((2, 0), (scheduler.Snapshot().Running, scheduler.Snapshot().Waiting));
    }

    [Fact]
    public async Task A_repeated_prompt_hits_the_prefix_cache_but_recomputes_its_last_token()
    {
        var scheduler = Create(blocks: 64);
        var first = Seq(16);
        Assert.Equal(0, await scheduler.AdmitAsync(first, default));
        scheduler.CompletePrefill(first);
        scheduler.Release(first);

        var again = Seq(16);
        // 4 full blocks cached, but the last token must run: 3 blocks (12 tokens) count as hits.
        Assert.Equal(12, await scheduler.AdmitAsync(again, default));

        var longer = Seq(20);
        Assert.Equal(16, await scheduler.AdmitAsync(longer, default));
    }

    [Fact]
    public async Task Growth_without_free_blocks_preempts_the_newest_sequence_which_resumes_later()
    {
        var scheduler = Create(blocks: 4, blockSize: 4);
        var old = Seq(4, offset: 0);
        var young = Seq(4, offset: 100);
        await scheduler.AdmitAsync(old, default);
        await scheduler.AdmitAsync(young, default);
        // Two blocks each after the first token; the old one then needs a third: the young one gives way.
        Assert.True(scheduler.TryAppend(old, 1));
        Assert.True(scheduler.TryAppend(young, 2));
        for (var i = 0; i < 4; i++)
        {
            Assert.True(scheduler.TryAppend(old, 10 + i));
        }
        Assert.Equal((1, 1), (scheduler.Snapshot().Running, scheduler.Snapshot().Waiting));
        Assert.False(scheduler.TryAppend(young, 3));
        Assert.Equal(1, young.Preemptions);

        var readmitted = scheduler.AdmitAsync(young, default);
        Assert.False(readmitted.IsCompleted);
        scheduler.Release(old);
        await readmitted.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(scheduler.TryAppend(young, 3));
        Assert.Equal([0, 1, 2, 3, 2, 3], young.Tokens.Select(t => t - 100 < 0 ? t : t - 100));
    }

    [Fact]
    public async Task A_request_for_a_second_adapter_waits_while_max_loras_are_busy_but_does_not_block_others()
    {
        var scheduler = Create(blocks: 64, maxLoras: 1);
        var first = Seq(4, "sql");
        await scheduler.AdmitAsync(first, default);
        var other = scheduler.AdmitAsync(Seq(4, "chat"), default);
        var same = scheduler.AdmitAsync(Seq(4, "sql"), default);
        var plain = scheduler.AdmitAsync(Seq(4), default);

        await same.WaitAsync(TimeSpan.FromSeconds(5));
        await plain.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(other.IsCompleted);
        Assert.Equal(["chat"], scheduler.Snapshot().WaitingLoras);
        Assert.Equal(["sql"], scheduler.Snapshot().RunningLoras);
    }

    [Fact]
    public async Task Adapters_are_listed_in_the_order_they_came_back_not_the_order_first_seen()
    {
        var scheduler = Create(blocks: 64, maxLoras: 1);
        var early = Seq(4, "sql");
        await scheduler.AdmitAsync(early, default);
        scheduler.Release(early);

        await scheduler.AdmitAsync(Seq(4, "chat"), default);
        var code = scheduler.AdmitAsync(Seq(4, "code"), default);
        var sql = scheduler.AdmitAsync(Seq(4, "sql"), default);
        Assert.False(code.IsCompleted || sql.IsCompleted);
        // vLLM drops an adapter from its per-adapter states once its requests are done: sql comes back after code.
        Assert.Equal(["code", "sql"], scheduler.Snapshot().WaitingLoras);
    }

    [Fact]
    public async Task An_engine_core_call_holds_admission_until_it_ends()
    {
        var scheduler = Create(blocks: 64);
        using var release = new CancellationTokenSource();
        var call = scheduler.RunBetweenStepsAsync(Timeout.InfiniteTimeSpan, release.Token);
        Assert.False(scheduler.StepsResumed.IsCompleted);
        var admission = scheduler.AdmitAsync(Seq(4), default);
        Assert.False(admission.IsCompleted);

        await release.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => call);
        await admission.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(scheduler.StepsResumed.IsCompleted);
    }

    [Fact]
    public async Task Cancelling_a_waiting_sequence_removes_it_from_the_queue()
    {
        var scheduler = Create(blocks: 64, maxNumSeqs: 1);
        await scheduler.AdmitAsync(Seq(4), default);
        using var cts = new CancellationTokenSource();
        var waiting = Seq(4);
        var admission = scheduler.AdmitAsync(waiting, cts.Token);
        Assert.Equal(1, scheduler.Snapshot().Waiting);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => admission);
        scheduler.Release(waiting);
        Assert.Equal(0, scheduler.Snapshot().Waiting);
    }

    [Fact]
    public async Task Releasing_frees_kv_blocks()
    {
        var scheduler = Create(blocks: 8);
        var seq = Seq(8);
        await scheduler.AdmitAsync(seq, default);
        Assert.Equal(0.25, scheduler.Snapshot().KvCacheUsage);
        scheduler.Release(seq);
        Assert.Equal(0, scheduler.Snapshot().KvCacheUsage);
    }

    [Fact]
    public async Task Sleep_without_freed_memory_holds_nothing_but_with_it_a_forward_pass_kills_the_engine_core()
    {
        var scheduler = Create(blocks: 64);
        scheduler.Sleep(releasesGpuMemory: false);
        await scheduler.AdmitAsync(Seq(4), default).WaitAsync(TimeSpan.FromSeconds(5));

        var running = Seq(4, offset: 100);
        await scheduler.AdmitAsync(running, default);
        scheduler.WakeUp();
        scheduler.Sleep(releasesGpuMemory: true);
        Assert.False(scheduler.IsDead);
        Assert.False(scheduler.TryAppend(running, 7));
        Assert.True(scheduler.IsDead);
        await Assert.ThrowsAsync<EngineDeadException>(() => scheduler.AdmitAsync(running, default));
        await Assert.ThrowsAsync<EngineDeadException>(() => scheduler.AdmitAsync(Seq(4, offset: 200), default));
        scheduler.Release(running);
    }

    [Fact]
    public async Task A_dead_engine_core_fails_waiting_sequences()
    {
        var scheduler = Create(blocks: 64, maxNumSeqs: 1);
        var running = Seq(4);
        await scheduler.AdmitAsync(running, default);
        var waiting = scheduler.AdmitAsync(Seq(4, offset: 50), default);
        Assert.False(waiting.IsCompleted);
        scheduler.Kill();
        await Assert.ThrowsAsync<EngineDeadException>(() => waiting);
        Assert.False(scheduler.TryAppend(running, 1));
        Assert.Equal((0, 0), (scheduler.Snapshot().Running, scheduler.Snapshot().Waiting));
        await scheduler.Dead.WaitAsync(TimeSpan.FromSeconds(5));
    }
}
