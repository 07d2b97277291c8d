using VllmStack.Router.Health;

namespace VllmStack.Router.Forwarding.Migration;

/// <summary>
/// One streaming request's means of carrying on elsewhere, as the router's endpoint provides them: what the request is,
/// how engine failures and completions are accounted (outlier detection, per-engine stats), and how a continuation
/// is routed and opened at another engine of the model.
/// </summary>
public abstract class StreamContinuation
{
    public required GenerationRoute Route { get; init; }

    /// <summary>The client's request body, as forwarded to the first engine.</summary>
    public required ReadOnlyMemory<byte> OriginalBody { get; init; }

    public required ContinuationBuilder.Assessment Assessment { get; init; }

    public required int MaxMigrations { get; init; }

    /// <summary>The engine now serving the stream failed (the first engine or a continuation's).</summary>
    public abstract void CurrentFailed(EngineFailureKind kind, string detail);

    /// <summary>The continuation's engine now serving the stream ended it normally.</summary>
    public abstract void CurrentCompleted();

    /// <summary>
    /// Routes <paramref name="body"/> (the continuation request) to another engine of the model and returns its response
    /// body once it answered 200 with an event stream; null when no engine could take it.
    /// </summary>
    public abstract Task<EngineResponseBody?> OpenAsync(byte[] body, CancellationToken cancellationToken);
}
