using System.Diagnostics;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Metrics;

namespace VllmStack.EngineSim.Api;

/// <summary>
/// The cost of a request that only reads its input (embeddings, scores, transcriptions): one prefill over its tokens,
/// charged with the latency profile and counted as prompt tokens, outside the generation batch.
/// </summary>
internal static class PrefillPass
{
    public static async Task RunAsync(EngineOptions options, EngineMetrics metrics, int tokens, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var ms = options.Latency.PrefillMs(tokens);
        if (ms > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(ms), cancellationToken);
        }
        metrics.PromptProcessed(tokens, Stopwatch.GetElapsedTime(started).TotalSeconds);
    }
}
