using VllmStack.Router.Engines;

namespace VllmStack.Router.Routing;

/// <summary>What a policy may look at to choose an engine for one request.</summary>
/// <param name="Model">The requested model (base or adapter).</param>
/// <param name="SessionKey">The session key from the configured header or body field, if any.</param>
/// <param name="PromptText">The prompt as text (chat messages joined), for prefix-aware policies; null when there is none.</param>
/// <param name="RequestId">The request id, for logs.</param>
/// <param name="Body">The request body as the client sent it (KV-aware routing has an engine tokenize its prompt).</param>
public sealed record RoutingRequest(string Model, string? SessionKey, string? PromptText, string RequestId, ReadOnlyMemory<byte> Body = default);

/// <summary>
/// Chooses one engine among candidates. Candidates are never empty, all serve the request's model and may
/// receive traffic; a retry passes the candidates not yet tried.
/// </summary>
public interface IRoutingPolicy
{
    /// <summary>The name used in configuration (<c>--routing-logic</c>).</summary>
    string Name { get; }

    ValueTask<Engine> ChooseAsync(RoutingRequest request, IReadOnlyList<Engine> candidates, CancellationToken cancellationToken);

    /// <summary>The set of known engines changed; state about engines no longer in it must be dropped.</summary>
    void OnEnginesChanged(IReadOnlyCollection<Engine> engines)
    {
    }
}
