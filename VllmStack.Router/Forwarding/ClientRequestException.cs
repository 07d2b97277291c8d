namespace VllmStack.Router.Forwarding;

/// <summary>
/// The request itself is at fault (its body, encoding, size or fields): the client gets <see cref="Status"/> with an
/// OpenAI-style error and no engine is touched or judged.
/// </summary>
/// <param name="Status">A 4xx status.</param>
/// <param name="Reason">The <c>reason</c> label of <c>vllmstack:router_rejected_requests_total</c>.</param>
public sealed class ClientRequestException(int status, string reason, string message, string? param = null) : Exception(message)
{
    public int Status { get; } = status;

    public string Reason { get; } = reason;

    public string? Param { get; } = param;

    public static ClientRequestException TooLarge(long limit, string what = "The request body") =>
        new(413, "body_too_large", $"{what} exceeds the limit of {limit} bytes.");
}
