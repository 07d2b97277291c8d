namespace VllmStack.Router.Forwarding;

/// <summary>
/// How requests travel to engines: section <c>Router:Forwarding</c>. Three timeouts cover the three silences of a
/// vLLM response: until its headers, from the headers to the first body byte, and between body chunks.
/// </summary>
public sealed class ForwardingOptions
{
    /// <summary>Seconds to open a connection to an engine.</summary>
    public double ConnectTimeout { get; set; } = 5;

    /// <summary>
    /// Seconds until the engine's response headers. vLLM sends them at once for a stream, but only when generation
    /// ends for a non-streaming request, so this bounds a whole non-streaming generation.
    /// </summary>
    public double ResponseHeadersTimeout { get; set; } = 600;

    /// <summary>
    /// Seconds from the response headers to the first body byte: a stream may wait this long in vLLM's queue and
    /// prefill before its first token (vLLM has no queue timeout of its own).
    /// </summary>
    public double FirstByteTimeout { get; set; } = 600;

    /// <summary>Seconds without a byte from the engine once its body flows (between tokens).</summary>
    public double IdleTimeout { get; set; } = 60;

    /// <summary>
    /// Seconds between SSE comment lines (<c>: keep-alive</c>) sent to the client while a stream waits for its first
    /// token, so that load balancers and clients with read timeouts keep the connection; 0 turns them off. Never sent
    /// on a response that is not <c>text/event-stream</c>.
    /// </summary>
    public double KeepAliveInterval { get; set; } = 15;

    /// <summary>
    /// Engines tried for one request, each at most once. Only engine-side failures before anything reached the client
    /// move a request on: connect failures, resets and timeouts before response headers, and 502/503/504.
    /// </summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Bearer key sent to engines in place of the client's Authorization header; empty means none (an unset Secret value).</summary>
    public string? EngineApiKey
    {
        get;
        set => field = string.IsNullOrEmpty(value) ? null : value;
    }

    public IEnumerable<string> Validate()
    {
        if (ConnectTimeout <= 0 || ResponseHeadersTimeout <= 0 || FirstByteTimeout <= 0 || IdleTimeout <= 0)
        {
            yield return "Forwarding timeouts (ConnectTimeout, ResponseHeadersTimeout, FirstByteTimeout, IdleTimeout) must be positive";
        }
        if (KeepAliveInterval < 0)
        {
            yield return "Forwarding:KeepAliveInterval must be 0 (off) or positive";
        }
        if (MaxAttempts < 1)
        {
            yield return "Forwarding:MaxAttempts must be at least 1";
        }
    }
}
