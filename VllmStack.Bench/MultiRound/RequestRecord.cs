using System.Text.Json.Serialization;

namespace VllmStack.Bench.MultiRound;

/// <summary>Why a request failed.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<RequestErrorKind>))]
public enum RequestErrorKind
{
    None,
    /// <summary>The server answered with a status of 400 or more.</summary>
    HttpStatus,
    /// <summary>The stream carried an <c>{"error": …}</c> frame.</summary>
    ErrorFrame,
    /// <summary>The stream ended without <c>[DONE]</c>, broke off, or carried a chunk that is not JSON.</summary>
    BrokenStream,
    /// <summary>The request did not finish within its timeout.</summary>
    Timeout,
    /// <summary>No connection, or it failed before the response headers.</summary>
    Connection,
    /// <summary>The stream completed without a single content token.</summary>
    NoContent,
}

/// <summary>
/// The measurements of one chat request. Times are in milliseconds from sending; token counts are the server's
/// (the usage chunk), null when it sent none.
/// </summary>
public sealed record RequestRecord(
    string UserId,
    int Round,
    DateTimeOffset StartedAt,
    RequestErrorKind ErrorKind,
    string? Error,
    int? HttpStatus,
    double? TtftMs,
    double E2eMs,
    int ContentChunks,
    int? PromptTokens,
    int? CompletionTokens,
    int? CachedPromptTokens,
    [property: JsonIgnore] IReadOnlyList<double> InterTokenMs)
{
    public bool Succeeded => ErrorKind == RequestErrorKind.None;

    public double? ItlMeanMs => InterTokenMs.Count > 0 ? InterTokenMs.Average() : null;
}

/// <summary>A finished request: its measurements and the answer text (empty when it failed).</summary>
public sealed record TurnResult(RequestRecord Record, string Answer);

/// <summary>Sends one turn of a conversation and measures it. Implementations never throw for a failed request
/// (it is a <see cref="RequestRecord"/> with an error); they throw only when <c>cancellationToken</c> is cancelled.</summary>
public interface IChatTurnClient
{
    Task<TurnResult> SendAsync(ChatTurn turn, CancellationToken cancellationToken);
}
