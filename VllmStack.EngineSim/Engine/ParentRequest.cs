namespace VllmStack.EngineSim.Engine;

/// <summary>
/// The <c>n</c> sequences of one prompt (OpenAI's <c>n</c>), as vLLM's <c>ParentRequest</c> groups them: the request's
/// <c>vllm:request_params_n</c> and <c>vllm:request_max_num_generation_tokens</c> are recorded once, when its last
/// sequence ends.
/// </summary>
public sealed class ParentRequest(int n)
{
    private readonly Lock _lock = new();
    private int _remaining = n;
    private int _longest;

    public int N { get; } = n;

    /// <summary>Counts one ended sequence; returns the longest output of all <c>n</c> once the last one ends, else null.</summary>
    public int? SequenceFinished(int outputTokens)
    {
        lock (_lock)
        {
            _longest = Math.Max(_longest, outputTokens);
            return --_remaining == 0 ? _longest : null;
        }
    }
}
