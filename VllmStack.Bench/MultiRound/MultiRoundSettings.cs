using System.Text.Json.Serialization;

namespace VllmStack.Bench.MultiRound;

/// <summary>Everything a multi-round QA run is given.</summary>
public sealed record MultiRoundSettings(
    Uri Url,
    string? Model,
    int Users,
    int Rounds,
    int SystemPromptTokens,
    int HistoryTokens,
    int QuestionTokens,
    int AnswerTokens,
    double Qps,
    TimeSpan Duration,
    string SessionHeader,
    [property: JsonIgnore] string? ApiKey,
    int Seed,
    TimeSpan RequestTimeout,
    double MaxErrorRate,
    string OutputDirectory)
{
    [JsonIgnore]
    public ConversationShape Shape => new(SystemPromptTokens, HistoryTokens, QuestionTokens, Rounds, Seed);

    /// <summary>
    /// How long after <see cref="Duration"/> in-flight requests may still finish. Each has its own timeout, so
    /// this only guards against a request that somehow outlives it.
    /// </summary>
    public TimeSpan DrainLimit => RequestTimeout + TimeSpan.FromSeconds(2);

    public IEnumerable<string> Validate()
    {
        if (!Url.IsAbsoluteUri || Url.Scheme is not ("http" or "https"))
        {
            yield return $"--url must be an absolute http(s) URL, not '{Url}'";
        }
        if (Users < 1)
        {
            yield return "--users must be at least 1";
        }
        if (Rounds < 1)
        {
            yield return "--rounds must be at least 1";
        }
        if (SystemPromptTokens < 0 || HistoryTokens < 0)
        {
            yield return "--system-prompt-tokens and --history-tokens cannot be negative";
        }
        if (QuestionTokens < 1 || AnswerTokens < 1)
        {
            yield return "--question-tokens and --answer-tokens must be at least 1";
        }
        if (Qps < 0 || double.IsNaN(Qps) || double.IsInfinity(Qps))
        {
            yield return "--qps must be 0 (no pacing) or a positive rate";
        }
        if (Duration <= TimeSpan.Zero)
        {
            yield return "--duration must be positive";
        }
        if (RequestTimeout <= TimeSpan.Zero)
        {
            yield return "--request-timeout must be positive";
        }
        if (MaxErrorRate is < 0 or > 1 || double.IsNaN(MaxErrorRate))
        {
            yield return "--max-error-rate must be between 0 and 1";
        }
    }
}
