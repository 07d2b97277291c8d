using System.Text.Json;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;
using VllmStack.EngineSim.Faults;
using VllmStack.EngineSim.Metrics;
using VllmStack.EngineSim.Tokenization;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.EngineSim.Api;

/// <summary>
/// vLLM's scoring APIs with its request and response shapes: <c>/score</c> and <c>/v1/score</c>
/// (<c>text_1</c>, <c>text_2</c> → <c>data[].score</c>) and Jina/Cohere-style rerank under <c>/rerank</c>,
/// <c>/v1/rerank</c> and <c>/v2/rerank</c> (<c>query</c>, <c>documents</c>, <c>top_n</c> → <c>results</c> by
/// relevance). Scores are deterministic: the share of the first text's words found in the second, plus a small
/// stable jitter so that ties are broken the same way in every process.
/// </summary>
public static class ScoringEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        foreach (var path in new[] { "/score", "/v1/score" })
        {
            app.MapPost(path, ScoreAsync);
        }
        foreach (var path in new[] { "/rerank", "/v1/rerank", "/v2/rerank" })
        {
            app.MapPost(path, RerankAsync);
        }
    }

    private static async Task ScoreAsync(HttpContext context, EngineOptions options, ModelCatalog catalog, FaultInjector faults, EngineMetrics metrics)
    {
        using var body = await JsonRequest.ReadAsync(context.Request, context.RequestAborted);
        var root = body.RootElement;
        var target = Resolve(root, catalog, faults, context.Request);
        var left = Texts(root, "text_1");
        var right = Texts(root, "text_2");
        // vLLM pairs one text_1 with every text_2, or text_1[i] with text_2[i].
        if (left.Count != 1 && left.Count != right.Count)
        {
            throw new ApiException(ApiError.BadRequest("text_1 and text_2 must have the same length, or text_1 a single text.", "text_1"));
        }
        var pairs = right.Select((text, i) => (Query: left[left.Count == 1 ? 0 : i], Document: text)).ToList();
        var tokens = pairs.Sum(p => SimTokenizer.Encode(p.Query).Length + SimTokenizer.Encode(p.Document).Length);
        await PrefillPass.RunAsync(options, metrics, tokens, context.RequestAborted);
        await ModelEndpoints.WriteJson(context, w =>
        {
            w.WriteStartObject();
            w.WriteString("id", $"score-{Guid.NewGuid():N}");
            w.WriteString("object", "list");
            w.WriteNumber("created", DateTimeOffset.UtcNow.ToUnixTimeSeconds());
            w.WriteString("model", target.RequestedName);
            w.WriteStartArray("data");
            for (var i = 0; i < pairs.Count; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("index", i);
                w.WriteString("object", "score");
                w.WriteNumber("score", Relevance(pairs[i].Query, pairs[i].Document));
                w.WriteEndObject();
            }
            w.WriteEndArray();
            OpenAiWriter.WriteUsage(w, tokens, 0, null);
            w.WriteEndObject();
        });
    }

    private static async Task RerankAsync(HttpContext context, EngineOptions options, ModelCatalog catalog, FaultInjector faults, EngineMetrics metrics)
    {
        using var body = await JsonRequest.ReadAsync(context.Request, context.RequestAborted);
        var root = body.RootElement;
        var target = Resolve(root, catalog, faults, context.Request);
        var query = JsonRequest.String(root, "query") ?? throw new ApiException(ApiError.BadRequest("'query' is required.", "query"));
        var documents = Texts(root, "documents");
        var topN = JsonRequest.Int(root, "top_n", 0) ?? 0;
        var ranked = documents.Select((text, index) => (Index: index, Text: text, Score: Relevance(query, text)))
            .OrderByDescending(d => d.Score).ThenBy(d => d.Index)
            .Take(topN > 0 ? topN : documents.Count).ToList();
        var tokens = documents.Sum(d => SimTokenizer.Encode(query).Length + SimTokenizer.Encode(d).Length);
        await PrefillPass.RunAsync(options, metrics, tokens, context.RequestAborted);
        await ModelEndpoints.WriteJson(context, w =>
        {
            w.WriteStartObject();
            w.WriteString("id", $"rerank-{Guid.NewGuid():N}");
            w.WriteString("model", target.RequestedName);
            w.WriteStartObject("usage");
            w.WriteNumber("total_tokens", tokens);
            w.WriteEndObject();
            w.WriteStartArray("results");
            foreach (var (index, text, score) in ranked)
            {
                w.WriteStartObject();
                w.WriteNumber("index", index);
                w.WriteStartObject("document");
                w.WriteString("text", text);
                w.WriteEndObject();
                w.WriteNumber("relevance_score", score);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
    }

    /// <summary>In [0, 1]: 0.9 × the share of the query's words that the document contains, + 0.1 × a stable hash of the pair.</summary>
    public static double Relevance(string query, string document)
    {
        var queryWords = Words(query);
        var documentWords = Words(document).ToHashSet(StringComparer.Ordinal);
        var overlap = queryWords.Count == 0 ? 0 : queryWords.Count(documentWords.Contains) / (double)queryWords.Count;
        var jitter = (KvBlockHashes.Text(query + "\u0000" + document, 0x5C0E) >> 11) * (1.0 / (1UL << 53));
        return Math.Round(0.9 * overlap + 0.1 * jitter, 6);
    }

    private static List<string> Words(string text) =>
        [.. text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Select(w => w.Trim('.', ',', ';', ':', '!', '?', '"', '\'').ToLowerInvariant()).Where(w => w.Length > 0)];

    private static ModelTarget Resolve(JsonElement root, ModelCatalog catalog, FaultInjector faults, HttpRequest request)
    {
        var model = JsonRequest.String(root, "model");
        var target = catalog.Resolve(model) ?? throw new ApiException(ApiError.ModelNotFound(model!));
        if (faults.Check(request, target.RequestedName) is { } fault)
        {
            throw new ApiException(fault);
        }
        return target;
    }

    /// <summary>A string or a non-empty array of strings.</summary>
    private static IReadOnlyList<string> Texts(JsonElement root, string name)
    {
        var texts = JsonRequest.StringOrStrings(root, name);
        return texts.Count > 0 ? texts : throw new ApiException(ApiError.BadRequest($"'{name}' is required: a string or a non-empty array of strings.", name));
    }
}
