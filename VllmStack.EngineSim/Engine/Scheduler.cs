using System.Diagnostics;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Metrics;

namespace VllmStack.EngineSim.Engine;

/// <summary>
/// Continuous batching: up to <c>max-num-seqs</c> sequences run at once, the rest wait first-come first-served
/// (or, under vLLM's priority policy, by request priority, lower first, then arrival). A sequence is admitted when the
/// KV cache can hold it (reusing cached prefix blocks); a growing sequence that finds no free block preempts the most
/// recently admitted one (under the priority policy, the lowest priority, latest arrival, as vLLM V1's scheduler does),
/// which goes back to the queue and recomputes when readmitted. Requests for a LoRA adapter wait while
/// <c>max-loras</c> other adapters are in the batch. What the batch produces is grouped into engine steps
/// (<see cref="EngineSteps"/>) for the per-step metrics. An engine-core call (<see cref="RunBetweenStepsAsync"/>, an
/// adapter load) stops every step while it runs, as vLLM's engine core does.
/// </summary>
public sealed class Scheduler
{
    private readonly Lock _lock = new();
    private readonly LinkedList<Sequence> _waiting = new();
    private readonly List<Sequence> _running = [];
    private readonly Dictionary<string, int> _runningLoras = new(StringComparer.Ordinal);
    // Adapters with queued or running sequences, in the order they got their first one since they last had none: the
    // order of vLLM's LoRARequestStates dict (vllm/v1/metrics/stats.py), which drops an adapter whose requests are all done.
    private readonly Dictionary<string, (long Order, int Sequences)> _liveLoras = new(StringComparer.Ordinal);
    private long _nextLoraOrder;
    private readonly SemaphoreSlim _engineCoreCalls = new(1, 1);
    private volatile Task _stepsResumed = Task.CompletedTask;
    private bool _betweenSteps;
    private readonly EngineSteps _steps;
    private readonly KvBlockPool _pool;
    private readonly EngineMetrics _metrics;
    private readonly int _maxNumSeqs;
    private readonly int _maxLoras;
    private readonly int _blockSize;
    private readonly SchedulingPolicy _policy;
    private bool _sleeping;
    private bool _lorasChanged = true;
    private string _runningLorasLabel = "";
    private string _waitingLorasLabel = "";
    private bool _gpuMemoryReleased;
    private readonly TaskCompletionSource _dead = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Scheduler(KvBlockPool pool, int maxNumSeqs, int maxLoras, EngineMetrics metrics, SchedulingPolicy policy = SchedulingPolicy.Fcfs)
    {
        _policy = policy;
        _pool = pool;
        _maxNumSeqs = maxNumSeqs;
        _maxLoras = maxLoras;
        _blockSize = pool.BlockSize;
        _metrics = metrics;
        _steps = new EngineSteps(StepEnded);
    }

    public int BlockSize => _blockSize;

    /// <summary>The prefix cache's content now, read under the scheduler's lock.</summary>
    public ulong[] CachedBlockHashes()
    {
        lock (_lock)
        {
            return _pool.CachedHashes();
        }
    }

    public int MaxNumSeqs => _maxNumSeqs;

    public SchedulerSnapshot Snapshot()
    {
        lock (_lock)
        {
            var (running, waiting) = LoraAdapters();
            return new SchedulerSnapshot(_running.Count, _waiting.Count, _pool.Usage, _pool.UsedBlocks, _pool.CachedBlocks, _sleeping, running, waiting);
        }
    }

    public int RunningCount
    {
        get
        {
            lock (_lock)
            {
                return _running.Count;
            }
        }
    }

    /// <summary>Completes when the engine core dies (vLLM's EngineDeadError); it never recovers.</summary>
    public Task Dead => _dead.Task;

    public bool IsDead => _dead.Task.IsCompleted;

    public bool IsSleeping
    {
        get
        {
            lock (_lock)
            {
                return _sleeping;
            }
        }
    }

    /// <summary>
    /// Queues the sequence (or finds it queued again after a preemption) and completes when it is admitted,
    /// with the number of its tokens found in the prefix cache.
    /// </summary>
    public async Task<int> AdmitAsync(Sequence seq, CancellationToken cancellationToken)
    {
        TaskCompletionSource<int> admission;
        lock (_lock)
        {
            if (IsDead)
            {
                throw new EngineDeadException();
            }
            if (seq.State == SequenceState.New)
            {
                seq.State = SequenceState.Waiting;
                seq.Admission = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
                seq.WaitingNode = Enqueue(seq, preempted: false);
                if (seq.Lora is not null)
                {
                    var (order, sequences) = _liveLoras.TryGetValue(seq.Lora, out var live) ? live : (_nextLoraOrder++, 0);
                    _liveLoras[seq.Lora] = (order, sequences + 1);
                    _lorasChanged = true;
                }
                TrySchedule();
            }
            else if (seq.State is not SequenceState.Waiting and not SequenceState.Running)
            {
                throw new InvalidOperationException($"A {seq.State} sequence cannot be admitted.");
            }
            admission = seq.Admission!;
        }
        if (admission.Task.IsCompleted || !cancellationToken.CanBeCanceled)
        {
            return await admission.Task.ConfigureAwait(false);
        }
        await using (cancellationToken.UnsafeRegister(static s => ((TaskCompletionSource<int>)s!).TrySetCanceled(), admission).ConfigureAwait(false))
        {
            return await admission.Task.ConfigureAwait(false);
        }
    }

    /// <summary>The prompt (or recomputed history) is in the KV cache now: its full blocks become reusable.</summary>
    public void CompletePrefill(Sequence seq)
    {
        lock (_lock)
        {
            if (seq.State == SequenceState.Running)
            {
                RegisterFullBlocks(seq);
            }
        }
    }

    /// <summary>
    /// Adds a generated token, taking a new block when the last one is full. False when the sequence has been
    /// preempted (by another's growth or its own): the caller readmits it and tries again.
    /// </summary>
    public bool TryAppend(Sequence seq, int token)
    {
        lock (_lock)
        {
            if (seq.State != SequenceState.Running)
            {
                return false;
            }
            if (_gpuMemoryReleased)
            {
                // A decode step on weights and KV cache that sleep mode unmapped: vLLM's worker dies of an illegal memory access.
                KillLocked();
                return false;
            }
            var first = seq.OutputLength == 0;
            if (seq.Tokens.Count + 1 > seq.Blocks.Count * _blockSize)
            {
                int block;
                while (!_pool.TryAllocateOne(out block))
                {
                    var victim = _policy == SchedulingPolicy.Priority
                        ? _running.MaxBy(r => (r.Priority, r.ArrivalTimestamp))!
                        : _running[^1];
                    Preempt(victim);
                    if (ReferenceEquals(victim, seq))
                    {
                        return false;
                    }
                }
                seq.Blocks.Add(block);
            }
            seq.Tokens.Add(token);
            _steps.Produced(seq, first ? seq.PromptLength + 1 : 1);
            if (seq.Tokens.Count % _blockSize == 0)
            {
                RegisterFullBlocks(seq);
            }
            return true;
        }
    }

    /// <summary>Completed while no engine-core call holds the steps: a sequence waits for it before it computes again.</summary>
    public Task StepsResumed => _stepsResumed;

    /// <summary>
    /// Runs an engine-core call that takes <paramref name="duration"/> between two steps: no step runs until it ends (nothing
    /// is admitted, no sequence computes; a step under way finishes), and calls run one at a time. vLLM's engine core
    /// handles a utility call such as <c>add_lora</c> inline on its busy-loop thread, between <c>_process_input_queue</c>
    /// and the next <c>step</c> (<c>vllm/v1/engine/core.py</c>, <c>EngineCoreProc._handle_client_request</c>), and the
    /// worker reads the adapter from disk inside it (<c>LRUCacheWorkerLoRAManager.add_adapter</c>).
    /// </summary>
    public async Task RunBetweenStepsAsync(TimeSpan duration, CancellationToken cancellationToken)
    {
        await _engineCoreCalls.WaitAsync(cancellationToken).ConfigureAwait(false);
        var resumed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            lock (_lock)
            {
                _betweenSteps = true;
                _stepsResumed = resumed.Task;
            }
            if (duration != TimeSpan.Zero)
            {
                await Task.Delay(duration, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            lock (_lock)
            {
                _betweenSteps = false;
                _stepsResumed = Task.CompletedTask;
                TrySchedule();
            }
            resumed.TrySetResult();
            _engineCoreCalls.Release();
        }
    }

    /// <summary>Takes the sequence out of the engine, whatever its state; its blocks stay cached for reuse.</summary>
    public void Release(Sequence seq)
    {
        lock (_lock)
        {
            if (seq.Lora is not null && seq.State is SequenceState.Waiting or SequenceState.Running && _liveLoras.TryGetValue(seq.Lora, out var live))
            {
                _lorasChanged = true;
                if (live.Sequences <= 1)
                {
                    _liveLoras.Remove(seq.Lora);
                }
                else
                {
                    _liveLoras[seq.Lora] = (live.Order, live.Sequences - 1);
                }
            }
            switch (seq.State)
            {
                case SequenceState.Waiting:
                    _waiting.Remove(seq.WaitingNode!);
                    seq.WaitingNode = null;
                    seq.Admission?.TrySetCanceled();
                    _lorasChanged |= seq.Lora is not null;
                    break;
                case SequenceState.Running:
                    RemoveRunning(seq);
                    _pool.Free(seq.Blocks);
                    break;
            }
            seq.State = SequenceState.Finished;
            TrySchedule();
        }
    }

    /// <summary>
    /// vLLM 0.11's sleep (AsyncLLM.sleep): the prefix cache is reset (when nothing runs), and scheduling goes on as
    /// before. With <paramref name="releasesGpuMemory"/> (<c>--enable-sleep-mode</c>) the next forward pass, a request
    /// admitted or a token decoded, kills the engine core, as vLLM's does; without it nothing was freed and work continues.
    /// </summary>
    public void Sleep(bool releasesGpuMemory)
    {
        lock (_lock)
        {
            _sleeping = true;
            _gpuMemoryReleased = releasesGpuMemory;
            if (_running.Count == 0)
            {
                _pool.ResetPrefixCache();
            }
            TrySchedule();
        }
    }

    /// <summary>Every sleeping part (weights and KV cache) is back.</summary>
    public void WakeUp()
    {
        lock (_lock)
        {
            _sleeping = false;
            _gpuMemoryReleased = false;
            TrySchedule();
        }
    }

    /// <summary>Drops cached prefixes no sequence uses; false when sequences are running (as vLLM refuses then).</summary>
    public bool ResetPrefixCache()
    {
        lock (_lock)
        {
            if (_running.Count > 0)
            {
                return false;
            }
            _pool.ResetPrefixCache();
            return true;
        }
    }

    /// <summary>
    /// The engine core dies: every queued and running sequence fails with <see cref="EngineDeadException"/> (a running
    /// one at its next step), and nothing is admitted again.
    /// </summary>
    public void Kill()
    {
        lock (_lock)
        {
            KillLocked();
        }
    }

    private void KillLocked()
    {
        if (!_dead.TrySetResult())
        {
            return;
        }
        foreach (var seq in _waiting)
        {
            seq.WaitingNode = null;
            seq.State = SequenceState.Finished;
            seq.Admission?.TrySetException(new EngineDeadException());
        }
        _waiting.Clear();
        foreach (var seq in _running)
        {
            _pool.Free(seq.Blocks);
            seq.State = SequenceState.Finished;
        }
        _running.Clear();
        _runningLoras.Clear();
        _liveLoras.Clear();
    }

    private void TrySchedule()
    {
        if (IsDead || _betweenSteps)
        {
            return;
        }
        if (_gpuMemoryReleased)
        {
            if (_waiting.Count > 0)
            {
                // Prefilling a request while asleep touches unmapped memory, as above.
                KillLocked();
            }
            return;
        }
        var node = _waiting.First;
        while (node is not null && _running.Count < _maxNumSeqs)
        {
            var seq = node.Value;
            var next = node.Next;
            if (seq.Lora is not null && !_runningLoras.ContainsKey(seq.Lora) && _runningLoras.Count >= _maxLoras)
            {
                // Its adapter cannot join the batch yet; later requests for running adapters may go first.
                node = next;
                continue;
            }
            var total = seq.Tokens.Count;
            var hashes = seq.HashFullBlocks(_blockSize);
            // The last token is always computed, so a fully cached prompt still runs one step of prefill.
            var eligible = Math.Min(hashes.Count, (total - 1) / _blockSize);
            var needed = (total + _blockSize - 1) / _blockSize;
            if (!_pool.TryAllocate(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(hashes)[..eligible], needed, seq.Blocks, out var cachedBlocks))
            {
                // First come, first served: nobody overtakes a request that waits for KV space.
                break;
            }
            _waiting.Remove(node);
            seq.WaitingNode = null;
            _running.Add(seq);
            if (seq.Lora is not null)
            {
                _runningLoras[seq.Lora] = _runningLoras.GetValueOrDefault(seq.Lora) + 1;
                _lorasChanged = true;
            }
            seq.State = SequenceState.Running;
            seq.RegisteredBlocks = cachedBlocks;
            seq.CachedTokens = cachedBlocks * _blockSize;
            if (seq.FirstScheduledTimestamp == 0)
            {
                seq.FirstScheduledTimestamp = Stopwatch.GetTimestamp();
            }
            _metrics.PrefixCacheQueried(total, seq.CachedTokens);
            seq.Admission!.TrySetResult(seq.CachedTokens);
            node = next;
        }
    }

    private void Preempt(Sequence victim)
    {
        RemoveRunning(victim);
        _pool.Free(victim.Blocks);
        victim.RegisteredBlocks = 0;
        victim.State = SequenceState.Waiting;
        victim.Preemptions++;
        victim.Admission = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        victim.WaitingNode = Enqueue(victim, preempted: true);
        _metrics.Preempted();
    }

    /// <summary>
    /// FCFS: new requests at the tail, preempted ones back at the head. Priority: in (priority, arrival) order, after
    /// any of equal rank, as vLLM's priority queue orders them.
    /// </summary>
    private LinkedListNode<Sequence> Enqueue(Sequence seq, bool preempted)
    {
        if (_policy != SchedulingPolicy.Priority)
        {
            return preempted ? _waiting.AddFirst(seq) : _waiting.AddLast(seq);
        }
        for (var node = _waiting.First; node is not null; node = node.Next)
        {
            var other = node.Value;
            if (other.Priority > seq.Priority || (other.Priority == seq.Priority && other.ArrivalTimestamp > seq.ArrivalTimestamp))
            {
                return _waiting.AddBefore(node, seq);
            }
        }
        return _waiting.AddLast(seq);
    }

    private void RemoveRunning(Sequence seq)
    {
        _running.Remove(seq);
        if (seq.Lora is not null && _runningLoras.TryGetValue(seq.Lora, out var count))
        {
            _lorasChanged = true;
            if (count <= 1)
            {
                _runningLoras.Remove(seq.Lora);
            }
            else
            {
                _runningLoras[seq.Lora] = count - 1;
            }
        }
        // The last step ends without the sequence that left, as vLLM's does once it has finished.
        if (_running.Count == 0)
        {
            _steps.BatchEmptied();
        }
    }

    /// <summary>Per step: <c>vllm:iteration_tokens_total</c>, and with LoRA the current adapters in <c>vllm:lora_requests_info</c>.</summary>
    private void StepEnded(int tokens)
    {
        _metrics.EngineStep(tokens);
        if (!_metrics.TracksLoraRequests)
        {
            return;
        }
        if (_lorasChanged)
        {
            var (running, waiting) = LoraAdapters();
            _runningLorasLabel = string.Join(',', running);
            _waitingLorasLabel = string.Join(',', waiting);
            _lorasChanged = false;
        }
        _metrics.LoraRequests(_runningLorasLabel, _waitingLorasLabel);
    }

    /// <summary>
    /// Adapters with running sequences and adapters with waiting ones, as vLLM lists them: an adapter is in both lists
    /// while it has sequences in both states, and each list keeps the order in which the engine first saw the adapters.
    /// </summary>
    private (string[] Running, string[] Waiting) LoraAdapters()
    {
        var waiting = new HashSet<string>(StringComparer.Ordinal);
        foreach (var seq in _waiting)
        {
            if (seq.Lora is not null)
            {
                waiting.Add(seq.Lora);
            }
        }
        return ([.. _runningLoras.Keys.OrderBy(FirstSeen)], [.. waiting.OrderBy(FirstSeen)]);
    }

    private long FirstSeen(string lora) => _liveLoras.TryGetValue(lora, out var live) ? live.Order : long.MaxValue;

    private void RegisterFullBlocks(Sequence seq)
    {
        var hashes = seq.HashFullBlocks(_blockSize);
        var full = Math.Min(hashes.Count, seq.Blocks.Count);
        for (var i = seq.RegisteredBlocks; i < full; i++)
        {
            _pool.Register(seq.Blocks[i], hashes[i]);
        }
        seq.RegisteredBlocks = Math.Max(seq.RegisteredBlocks, full);
    }
}

public sealed record SchedulerSnapshot(
    int Running,
    int Waiting,
    double KvCacheUsage,
    int UsedBlocks,
    int CachedBlocks,
    bool Sleeping,
    IReadOnlyList<string> RunningLoras,
    IReadOnlyList<string> WaitingLoras);
