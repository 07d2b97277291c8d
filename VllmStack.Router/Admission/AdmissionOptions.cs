namespace VllmStack.Router.Admission;

/// <summary>
/// Admission control (section <c>Router:Admission</c>): when every engine of a model is saturated, requests wait in a
/// fair router queue instead of piling onto the engines, and a full queue or a too-long wait is answered 429.
/// Off by default: it turns answers that used to come late into 429s, and where that trade lies is the operator's call.
/// The per-client limits apply whenever they are set, with or without the queue.
/// </summary>
public sealed class AdmissionOptions
{
    /// <summary>Queue requests when every engine of their model is saturated (<c>--admission-control</c>).</summary>
    public bool Enabled { get; set; }

    /// <summary>
    /// Requests an engine may have waiting beyond its running batch before it counts as saturated. The batch size is
    /// learnt from the engine's metrics (the most <c>vllm:num_requests_running</c> seen while <c>vllm:num_requests_waiting</c>
    /// was above zero, or later); an engine that has never shown a full batch is not limited until it does.
    /// </summary>
    public int MaxWaitingPerEngine { get; set; } = 2;

    /// <summary>
    /// A fixed limit of requests per engine (running and waiting together, this router's and others'), replacing the
    /// learnt batch size plus <see cref="MaxWaitingPerEngine"/>; 0: learn it.
    /// </summary>
    public int MaxInFlightPerEngine { get; set; }

    /// <summary>Requests that may wait in the router per model; past it, 429.</summary>
    public int MaxQueueSize { get; set; } = 1000;

    /// <summary>Seconds a request may wait in the router queue; past it, 429.</summary>
    public double MaxQueueWait { get; set; } = 30;

    /// <summary>Header with an integer priority that orders a client's queued requests (lower first), in place of the body's <c>priority</c>.</summary>
    public string PriorityHeader { get; set; } = "x-request-priority";

    /// <summary>Requests one client may have in flight or queued at once; 0: no limit.</summary>
    public int ClientMaxConcurrency { get; set; }

    /// <summary>
    /// Tokens one client may use per minute (a token bucket refilled every second); 0: no limit. A request costs its body
    /// length / 4 (OpenAI's estimate of prompt tokens) plus its <c>max_tokens</c> / <c>max_completion_tokens</c>.
    /// </summary>
    public int ClientTokensPerMinute { get; set; }

    public IEnumerable<string> Validate()
    {
        if (MaxWaitingPerEngine < 0 || MaxInFlightPerEngine < 0 || MaxQueueSize < 0 || ClientMaxConcurrency < 0 || ClientTokensPerMinute < 0)
        {
            yield return "Admission limits (MaxWaitingPerEngine, MaxInFlightPerEngine, MaxQueueSize, ClientMaxConcurrency, ClientTokensPerMinute) must not be negative";
        }
        if (MaxInFlightPerEngine == 0 && MaxWaitingPerEngine < 1)
        {
            // With no waiting allowance, an engine whose batch size was learnt low would never be seen running more.
            yield return "--max-waiting-per-engine must be at least 1 unless --max-in-flight-per-engine is set";
        }
        if (MaxQueueWait is <= 0 or > 3600)
        {
            yield return $"--max-queue-wait must be more than 0 and at most 3600 seconds, not {MaxQueueWait}";
        }
        if (string.IsNullOrWhiteSpace(PriorityHeader))
        {
            yield return "Admission:PriorityHeader must not be empty";
        }
    }
}
