namespace VllmStack.Bench.MultiRound;

/// <summary>The figures of one round number across all conversations: how prompts grow and what that costs.</summary>
public sealed record RoundSummary(int Round, int Requests, int Errors, double MeanPromptTokens, double? MeanCachedPromptTokens, Distribution TtftMs);

/// <summary>
/// The run's figures. Latencies come from successful requests only; inter-token latencies are pooled over every
/// gap between content chunks of every successful request. Rates divide by the run's whole elapsed time.
/// </summary>
public sealed record RunSummary(
    int Requests,
    int Succeeded,
    int Errors,
    double ErrorRate,
    IReadOnlyDictionary<string, int> ErrorsByKind,
    double ElapsedSeconds,
    Distribution TtftMs,
    Distribution ItlMs,
    Distribution E2eMs,
    double RequestsPerSecond,
    double OutputTokensPerSecond,
    double PromptTokensPerSecond,
    long PromptTokens,
    long CompletionTokens,
    long? CachedPromptTokens,
    double? CachedPromptShare,
    int UsersStarted,
    int ConversationsCompleted,
    int Abandoned,
    IReadOnlyList<RoundSummary> Rounds)
{
    /// <summary>The run counts as good when something succeeded and the error rate is within the limit.</summary>
    public bool Passes(double maxErrorRate) => Succeeded > 0 && ErrorRate <= maxErrorRate;

    public static RunSummary Of(RunResult run)
    {
        var all = run.Requests;
        var ok = all.Where(r => r.Succeeded).ToArray();
        var seconds = run.Elapsed.TotalSeconds;
        double PerSecond(double amount) => seconds > 0 ? amount / seconds : 0;

        var promptTokens = ok.Sum(r => (long)(r.PromptTokens ?? 0));
        // Without a usage chunk the content chunks are the best count of output tokens there is.
        var completionTokens = ok.Sum(r => (long)(r.CompletionTokens ?? r.ContentChunks));
        var reportingCache = ok.Where(r => r.CachedPromptTokens is not null).ToArray();
        long? cached = reportingCache.Length > 0 ? reportingCache.Sum(r => (long)r.CachedPromptTokens!.Value) : null;
        var promptOfReporting = reportingCache.Sum(r => (long)(r.PromptTokens ?? 0));
        double? cachedShare = cached is { } c && promptOfReporting > 0 ? (double)c / promptOfReporting : null;

        var errors = all.Count - ok.Length;
        return new RunSummary(
            all.Count, ok.Length, errors, all.Count > 0 ? (double)errors / all.Count : 0,
            all.Where(r => !r.Succeeded).GroupBy(r => r.ErrorKind.ToString()).OrderBy(g => g.Key).ToDictionary(g => g.Key, g => g.Count()),
            seconds,
            Distribution.Of(ok.Where(r => r.TtftMs is not null).Select(r => r.TtftMs!.Value)),
            Distribution.Of(ok.SelectMany(r => r.InterTokenMs)),
            Distribution.Of(ok.Select(r => r.E2eMs)),
            PerSecond(ok.Length), PerSecond(completionTokens), PerSecond(promptTokens),
            promptTokens, completionTokens, cached, cachedShare,
            run.UsersStarted, run.ConversationsCompleted, run.Abandoned,
            ByRound(all));
    }

    private static RoundSummary[] ByRound(IReadOnlyList<RequestRecord> all) =>
    [
        .. all.GroupBy(r => r.Round).OrderBy(g => g.Key).Select(g =>
        {
            var ok = g.Where(r => r.Succeeded).ToArray();
            var withPrompt = ok.Where(r => r.PromptTokens is not null).ToArray();
            var withCache = ok.Where(r => r.CachedPromptTokens is not null).ToArray();
            return new RoundSummary(g.Key, g.Count(), g.Count() - ok.Length,
                withPrompt.Length > 0 ? withPrompt.Average(r => r.PromptTokens!.Value) : 0,
                withCache.Length > 0 ? withCache.Average(r => r.CachedPromptTokens!.Value) : null,
                Distribution.Of(ok.Where(r => r.TtftMs is not null).Select(r => r.TtftMs!.Value)));
        }),
    ];
}
