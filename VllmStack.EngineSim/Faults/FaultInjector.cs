using System.Globalization;
using VllmStack.EngineSim.Api;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;

namespace VllmStack.EngineSim.Faults;

/// <summary>
/// Failures on purpose, for testing what sits in front of the engine: a random share of requests fail
/// with one of the configured failure types, request headers force an error status or a mid-stream drop, and
/// the engine core can die (<c>--fault-engine-dead-after-requests</c> or a header) as vLLM's does.
/// </summary>
public sealed class FaultInjector(EngineOptions options, Scheduler scheduler)
{
    /// <summary>Kill the engine core with this request (any value but <c>0</c>/<c>false</c>): it and everything in flight fail.</summary>
    public const string EngineDeadHeader = "x-vllmsim-engine-dead";

    /// <summary>
    /// vLLM 0.11 once its engine core is dead: the serving layer raises <c>EngineDeadError</c> before it starts, which
    /// the route turns into an <c>HTTPException(500)</c> (type "Internal Server Error"), streaming or not.
    /// </summary>
    public static readonly ApiError EngineDead = new(500, EngineDeadException.EngineDeadMessage, "Internal Server Error");

    /// <summary>
    /// vLLM 0.11 when the engine core dies under a stream whose headers are gone: the stream generator catches it and
    /// sends <c>create_streaming_error_response(str(e))</c>, a 400 <c>BadRequestError</c> frame, then <c>[DONE]</c>.
    /// </summary>
    public static readonly ApiError EngineDeadInStream = new(400, EngineDeadException.EngineDeadMessage, "BadRequestError");

    private long _requests;

    /// <summary>Answer this request with the given HTTP status and an OpenAI-style error.</summary>
    public const string ForceStatusHeader = "x-vllmsim-force-status";

    /// <summary>Drop the connection after this many generated tokens, as a crashing engine would.</summary>
    public const string AbortAfterTokensHeader = "x-vllmsim-abort-after-tokens";

    /// <summary>How an <see cref="AbortAfterTokensHeader"/> abort looks to the client: <see cref="AbortMode"/>, by its lower-case name.</summary>
    public const string AbortModeHeader = "x-vllmsim-abort-mode";

    /// <summary>Hold the request this many milliseconds before it starts (as a long queue would), after a stream's headers went out.</summary>
    public const string FirstTokenDelayHeader = "x-vllmsim-first-token-delay-ms";

    public ApiError? Check(HttpRequest request, string model)
    {
        if (scheduler.IsDead)
        {
            return EngineDead;
        }
        var killer = request.Headers[EngineDeadHeader].ToString() is { Length: > 0 } kill && kill is not ("0" or "false");
        if (killer || Interlocked.Increment(ref _requests) > options.FaultEngineDeadAfterRequests)
        {
            scheduler.Kill();
            return EngineDead;
        }
        if (request.Headers.TryGetValue(ForceStatusHeader, out var forced))
        {
            if (!int.TryParse(forced.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var status) || status is < 400 or > 599)
            {
                return ApiError.BadRequest($"Header {ForceStatusHeader} must be an HTTP error status between 400 and 599.");
            }
            return ApiError.ForStatus(status, $"Injected failure: status {status} forced by the {ForceStatusHeader} header.");
        }
        if (options.FailureRate <= 0 || Random.Shared.NextDouble() >= options.FailureRate)
        {
            return null;
        }
        var type = options.FailureTypes[Random.Shared.Next(options.FailureTypes.Count)];
        return type switch
        {
            FailureType.RateLimit => ApiError.ForStatus(429, $"Rate limit reached for {model} (injected failure)."),
            FailureType.InvalidApiKey => ApiError.Unauthorized("Incorrect API key provided (injected failure)."),
            FailureType.ContextLength => ApiError.BadRequest($"This model's maximum context length is {options.MaxModelLen} tokens. However, your request is longer (injected failure).", "messages"),
            FailureType.InvalidRequest => ApiError.BadRequest("Invalid request (injected failure)."),
            FailureType.ModelNotFound => ApiError.NotFound($"The model `{model}-nonexistent` does not exist (injected failure).", "model"),
            FailureType.ServiceUnavailable => ApiError.ForStatus(503, "The engine is overloaded (injected failure)."),
            _ => ApiError.ForStatus(500, "Internal server error (injected failure)."),
        };
    }

    public static int? AbortAfterTokens(HttpRequest request)
    {
        if (!request.Headers.TryGetValue(AbortAfterTokensHeader, out var value))
        {
            return null;
        }
        return int.TryParse(value.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 0
            ? n
            : throw new ApiException(ApiError.BadRequest($"Header {AbortAfterTokensHeader} must be a non-negative integer."));
    }

    public static TimeSpan FirstTokenDelay(HttpRequest request)
    {
        if (!request.Headers.TryGetValue(FirstTokenDelayHeader, out var value))
        {
            return TimeSpan.Zero;
        }
        return int.TryParse(value.ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms) && ms >= 0
            ? TimeSpan.FromMilliseconds(ms)
            : throw new ApiException(ApiError.BadRequest($"Header {FirstTokenDelayHeader} must be a non-negative integer (milliseconds)."));
    }

    public static AbortMode Abort(HttpRequest request) => request.Headers[AbortModeHeader].ToString() switch
    {
        "" or "reset" => AbortMode.Reset,
        "close" => AbortMode.Close,
        "error-frame" => AbortMode.ErrorFrame,
        var other => throw new ApiException(ApiError.BadRequest($"Header {AbortModeHeader} must be reset, close or error-frame, not '{other}'.")),
    };
}

/// <summary>How an injected mid-stream failure looks to the client.</summary>
public enum AbortMode
{
    /// <summary>The connection is aborted at once (a network failure, a killed pod).</summary>
    Reset,

    /// <summary>Half an event is written, then the connection closes: a vLLM process dying in the middle of a write.</summary>
    Close,

    /// <summary>
    /// vLLM's own answer when its engine core fails mid-stream: an error frame (type <c>BadRequestError</c>, code 400, as
    /// vLLM's stream generators report any exception) and <c>data: [DONE]</c>, on a connection that stays healthy.
    /// </summary>
    ErrorFrame,
}
