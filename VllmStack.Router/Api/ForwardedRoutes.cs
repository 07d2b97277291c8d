namespace VllmStack.Router.Api;

/// <summary>How a forwarded route's request body is read for routing.</summary>
public enum RequestBodyKind
{
    /// <summary>A JSON object with a <c>model</c> field, read whole (routing needs it; a retry resends it).</summary>
    Json,

    /// <summary><c>multipart/form-data</c> with a <c>model</c> form field; the body streams through after that field.</summary>
    Multipart,
}

/// <summary>One POST route the router forwards to an engine of the request's model.</summary>
public sealed record ForwardedRoute(string Path, RequestBodyKind Body);

/// <summary>
/// Every vLLM API the router forwards, in one place: the OpenAI-compatible and vLLM-specific POST routes of
/// <c>vllm serve</c> (vLLM 0.11's <c>entrypoints/openai/api_server.py</c> and the "Online Serving" page of vLLM's
/// documentation), all of which name their model in the body. Stateful routes that live on one engine
/// (<c>GET /v1/responses/{id}</c>, <c>/cancel</c>) and engine administration (LoRA loading, sleep) are not forwarded.
/// </summary>
public static class ForwardedRoutes
{
    public static readonly IReadOnlyList<ForwardedRoute> All =
    [
        // OpenAI APIs.
        new("/v1/chat/completions", RequestBodyKind.Json),
        new("/v1/completions", RequestBodyKind.Json),
        new("/v1/embeddings", RequestBodyKind.Json),
        new("/v1/responses", RequestBodyKind.Json),
        new("/v1/audio/transcriptions", RequestBodyKind.Multipart),
        new("/v1/audio/translations", RequestBodyKind.Multipart),
        // Pooling and scoring models (Jina/Cohere-style rerank under three paths, as vLLM serves it).
        new("/pooling", RequestBodyKind.Json),
        new("/classify", RequestBodyKind.Json),
        new("/score", RequestBodyKind.Json),
        new("/v1/score", RequestBodyKind.Json),
        new("/rerank", RequestBodyKind.Json),
        new("/v1/rerank", RequestBodyKind.Json),
        new("/v2/rerank", RequestBodyKind.Json),
        // Tokenizer.
        new("/tokenize", RequestBodyKind.Json),
        new("/detokenize", RequestBodyKind.Json),
        // Newer releases: Anthropic messages, Cohere embed, SageMaker's single entry point (model optional).
        new("/v1/messages", RequestBodyKind.Json),
        new("/v1/messages/count_tokens", RequestBodyKind.Json),
        new("/v2/embed", RequestBodyKind.Json),
        new("/invocations", RequestBodyKind.Json),
    ];
}
