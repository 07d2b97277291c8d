using System.Diagnostics;
using System.Text;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Generation;
using VllmStack.EngineSim.Metrics;
using VllmStack.EngineSim.Tokenization;

namespace VllmStack.EngineSim.Engine;

/// <summary>What a request asks of each of its sequences.</summary>
public sealed record GenerationParams(
    int MaxTokens,
    int MinTokens,
    bool IgnoreEos,
    IReadOnlyList<string> Stop,
    bool IncludeStopStrInOutput,
    IReadOnlySet<int> StopTokenIds,
    int? AbortAfterTokens);

/// <summary>
/// One step of a sequence as the client sees it: new text, the tokens generated since the last step (their logprobs go
/// with it), and on the last step why it ended.
/// </summary>
public readonly record struct TokenDelta(int Choice, string Text, int CompletionTokens, string? FinishReason, object? StopReason, IReadOnlyList<int> TokenIds, int FirstTokenIndex);

/// <param name="TokenIds">Every generated token, in order.</param>
public sealed record SequenceOutcome(int Choice, string Text, int CompletionTokens, string FinishReason, object? StopReason, int CachedTokens, IReadOnlyList<int> TokenIds);

/// <summary>Thrown when a request asked the simulator to die mid-stream (fault injection).</summary>
public sealed class SimulatedCrashException() : Exception("The simulated engine dropped the request mid-stream.");

/// <summary>
/// Drives one sequence through the engine: queue, prefill (cached prefix tokens cost nothing), then one token
/// per inter-token interval, with stop conditions and detokenization as vLLM applies them.
/// </summary>
public sealed class SequenceRunner(Scheduler scheduler, LatencyProfile latency, EngineMetrics metrics,
    EngineOptions? options = null, Network.KvPoolClient? pool = null)
{
    public async Task<SequenceOutcome> RunAsync(
        Sequence seq, TokenSource source, GenerationParams p, int choice, Func<TokenDelta, ValueTask>? onDelta, CancellationToken cancellationToken)
    {
        var random = latency.Jitter > 0 ? new Random(HashCode.Combine(seq.ArrivalTimestamp, choice)) : null;
        var decoder = new IncrementalDecoder();
        var stops = new StopMatcher(p.Stop, p.IncludeStopStrInOutput);
        var text = new StringBuilder();
        var emitted = 0;
        var outputIds = new List<int>();
        var emittedIds = 0;
        var finishReason = FinishReasons.Abort;
        long firstToken = 0;
        long lastToken = 0;
        try
        {
            // With the shared pool, learn how much of the prompt it holds while the request still queues.
            var pooledBlocks = await PooledBlocksAsync(seq, cancellationToken).ConfigureAwait(false);
            var cached = await scheduler.AdmitAsync(seq, cancellationToken).ConfigureAwait(false);
            await PrefillAsync(seq, cached, random, cancellationToken, pooledBlocks).ConfigureAwait(false);
            while (true)
            {
                var allowEnd = !p.IgnoreEos && seq.OutputLength >= p.MinTokens;
                var token = source.Next(allowEnd);
                while (!scheduler.TryAppend(seq, token))
                {
                    // Preempted: wait to be readmitted, recompute what the cache lost, and carry on.
                    cached = await scheduler.AdmitAsync(seq, cancellationToken).ConfigureAwait(false);
                    await PrefillAsync(seq, cached, random, cancellationToken).ConfigureAwait(false);
                }
                var now = Stopwatch.GetTimestamp();
                if (firstToken == 0)
                {
                    firstToken = now;
                    metrics.FirstToken(Stopwatch.GetElapsedTime(seq.ArrivalTimestamp, now).TotalSeconds, seq.PromptLength);
                }
                else
                {
                    metrics.InterToken(Stopwatch.GetElapsedTime(lastToken, now).TotalSeconds);
                }
                lastToken = now;
                metrics.TokenGenerated();
                outputIds.Add(token);

                string? finish = null;
                object? stopReason = null;
                var mayStop = seq.OutputLength >= p.MinTokens;
                if (token == source.EndToken && allowEnd)
                {
                    finish = FinishReasons.Stop;
                }
                else if (mayStop && p.StopTokenIds.Contains(token))
                {
                    finish = FinishReasons.Stop;
                    stopReason = token;
                }
                else
                {
                    var before = text.Length;
                    text.Append(decoder.Next(token));
                    if (mayStop && !stops.IsEmpty && text.Length > before)
                    {
                        var (end, hit) = stops.Find(text.ToString(), before);
                        if (hit is not null)
                        {
                            text.Length = end;
                            finish = FinishReasons.Stop;
                            stopReason = hit;
                        }
                    }
                }
                if (finish is null && seq.OutputLength >= p.MaxTokens)
                {
                    finish = FinishReasons.Length;
                }

                var safe = finish is not null || stops.IsEmpty ? text.Length : stops.SafeLength(text.ToString());
                if (onDelta is not null && (safe > emitted || finish is not null))
                {
                    var delta = safe > emitted ? text.ToString(emitted, safe - emitted) : "";
                    emitted = Math.Max(emitted, safe);
                    var ids = outputIds.GetRange(emittedIds, outputIds.Count - emittedIds);
                    await onDelta(new TokenDelta(choice, delta, seq.OutputLength, finish, stopReason, ids, emittedIds)).ConfigureAwait(false);
                    emittedIds = outputIds.Count;
                }
                if (p.AbortAfterTokens is { } abortAt && seq.OutputLength >= abortAt)
                {
                    throw new SimulatedCrashException();
                }
                if (finish is not null)
                {
                    finishReason = finish;
                    return new SequenceOutcome(choice, text.ToString(), seq.OutputLength, finish, stopReason, seq.CachedTokens, outputIds);
                }
                await ComputeAsync(latency.InterTokenLatencyMs, random, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            scheduler.Release(seq);
            metrics.Finished(seq, finishReason, firstToken, lastToken, p.MaxTokens);
        }
    }

    /// <summary>Which of the prompt's full blocks (all but the last token's) the pool holds; empty without a pool.</summary>
    private async Task<bool[]> PooledBlocksAsync(Sequence seq, CancellationToken cancellationToken)
    {
        if (pool is null || options is null)
        {
            return [];
        }
        var hashes = seq.HashFullBlocks(scheduler.BlockSize);
        var eligible = Math.Min(hashes.Count, (seq.Tokens.Count - 1) / scheduler.BlockSize);
        return await pool.PresentBlocksAsync(options.PrimaryBaseModel, hashes.GetRange(0, eligible), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Blocks the local cache lacks but the pool holds (the run that continues the local prefix: a hot system prompt
    /// stays local and is never offloaded, while a conversation's later blocks may be in the pool) are fetched and
    /// cost their transfer time (bytes ÷ bandwidth); only what neither holds is computed.
    /// </summary>
    private async Task PrefillAsync(Sequence seq, int cachedTokens, Random? random, CancellationToken cancellationToken, bool[] pooledBlocks)
    {
        var remoteTokens = 0;
        var cachedBlocks = cachedTokens / scheduler.BlockSize;
        var pooledRun = 0;
        while (cachedBlocks + pooledRun < pooledBlocks.Length && pooledBlocks[cachedBlocks + pooledRun])
        {
            pooledRun++;
        }
        if (pool is not null && options is not null && pooledRun > 0)
        {
            var hashes = seq.HashFullBlocks(scheduler.BlockSize).GetRange(cachedBlocks, pooledRun);
            metrics.ExternalPrefixCacheQueried(hashes.Count * scheduler.BlockSize, 0);
            if (await pool.FetchAsync(options.PrimaryBaseModel, hashes, cancellationToken).ConfigureAwait(false))
            {
                remoteTokens = hashes.Count * scheduler.BlockSize;
                metrics.ExternalPrefixCacheQueried(0, remoteTokens);
            }
        }
        var transferMs = options is null ? 0 : remoteTokens * (double)options.KvBytesPerToken / (options.KvTransferGBps * 1e9) * 1000;
        await ComputeAsync(latency.PrefillMs(seq.Tokens.Count - cachedTokens - remoteTokens) + transferMs, random, cancellationToken).ConfigureAwait(false);
        scheduler.CompletePrefill(seq);
    }

    private Task PrefillAsync(Sequence seq, int cachedTokens, Random? random, CancellationToken cancellationToken)
    {
        var compute = ComputeAsync(latency.PrefillMs(seq.Tokens.Count - cachedTokens), random, cancellationToken);
        if (compute.IsCompletedSuccessfully)
        {
            scheduler.CompletePrefill(seq);
            return Task.CompletedTask;
        }
        return Finish(compute, seq);

        async Task Finish(Task pending, Sequence s)
        {
            await pending.ConfigureAwait(false);
            scheduler.CompletePrefill(s);
        }
    }

    /// <summary>
    /// Waits for simulated GPU time, longer when the batch is fuller; no wait at all for the instant profile. A step does
    /// not start while an engine-core call (an adapter load) holds the engine.
    /// </summary>
    private Task ComputeAsync(double baseMs, Random? random, CancellationToken cancellationToken)
    {
        var resumed = scheduler.StepsResumed;
        if (!resumed.IsCompleted)
        {
            return ComputeAfterAsync(resumed, baseMs, random, cancellationToken);
        }
        if (baseMs <= 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return Task.CompletedTask;
        }
        var ms = baseMs * latency.LoadFactor(scheduler.RunningCount, scheduler.MaxNumSeqs);
        if (random is not null)
        {
            ms *= Math.Max(0.1, 1 + latency.Jitter * (random.NextDouble() * 2 - 1));
        }
        return Task.Delay(TimeSpan.FromMilliseconds(ms), cancellationToken);
    }

    private async Task ComputeAfterAsync(Task resumed, double baseMs, Random? random, CancellationToken cancellationToken)
    {
        await resumed.WaitAsync(cancellationToken).ConfigureAwait(false);
        await ComputeAsync(baseMs, random, cancellationToken).ConfigureAwait(false);
    }
}
