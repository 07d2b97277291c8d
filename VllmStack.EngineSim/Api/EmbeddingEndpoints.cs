using System.Text.Json;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;
using VllmStack.EngineSim.Faults;
using VllmStack.EngineSim.Metrics;
using VllmStack.EngineSim.Tokenization;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.EngineSim.Api;

/// <summary><c>/v1/embeddings</c>: deterministic unit vectors, the same for the same tokens in every process.</summary>
public static class EmbeddingEndpoints
{
    public static void Map(IEndpointRouteBuilder app, EngineOptions options)
    {
        app.MapPost("/v1/embeddings", async (HttpContext context, ModelCatalog catalog, FaultInjector faults, EngineMetrics metrics) =>
        {
            var aborted = context.RequestAborted;
            using var body = await JsonRequest.ReadAsync(context.Request, aborted);
            var root = body.RootElement;
            var model = JsonRequest.String(root, "model");
            var target = catalog.Resolve(model) ?? throw new ApiException(ApiError.ModelNotFound(model!));
            var inputs = ParseInput(root);
            var dimensions = JsonRequest.Int(root, "dimensions", 1, options.EmbeddingDimensions) ?? options.EmbeddingDimensions;
            var format = JsonRequest.String(root, "encoding_format") ?? "float";
            if (format is not ("float" or "base64"))
            {
                throw new ApiException(ApiError.BadRequest("'encoding_format' must be 'float' or 'base64'.", "encoding_format"));
            }
            foreach (var input in inputs)
            {
                if (input.Length > options.MaxModelLen)
                {
                    throw new ApiException(ApiError.BadRequest(
                        $"This model's maximum context length is {options.MaxModelLen} tokens. However, you requested {input.Length} tokens in the input for embedding generation. Please reduce the length of the input.", "input"));
                }
            }
            if (faults.Check(context.Request, target.RequestedName) is { } fault)
            {
                throw new ApiException(fault);
            }
            var totalTokens = inputs.Sum(i => i.Length);
            await PrefillPass.RunAsync(options, metrics, totalTokens, aborted);

            await ModelEndpoints.WriteJson(context, w =>
            {
                w.WriteStartObject();
                w.WriteString("id", $"embd-{Guid.NewGuid():N}");
                w.WriteString("object", "list");
                w.WriteNumber("created", DateTimeOffset.UtcNow.ToUnixTimeSeconds());
                w.WriteString("model", target.RequestedName);
                w.WriteStartArray("data");
                var vector = new float[dimensions];
                for (var i = 0; i < inputs.Count; i++)
                {
                    Embed(inputs[i], vector);
                    w.WriteStartObject();
                    w.WriteNumber("index", i);
                    w.WriteString("object", "embedding");
                    if (format == "base64")
                    {
                        w.WriteBase64String("embedding", System.Runtime.InteropServices.MemoryMarshal.AsBytes(vector.AsSpan()));
                    }
                    else
                    {
                        w.WriteStartArray("embedding");
                        foreach (var value in vector)
                        {
                            w.WriteNumberValue(value);
                        }
                        w.WriteEndArray();
                    }
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                OpenAiWriter.WriteUsage(w, totalTokens, 0, null);
                w.WriteEndObject();
            });
        });
    }

    /// <summary>A unit vector drawn from a generator seeded by the tokens' stable hash.</summary>
    internal static void Embed(int[] tokens, float[] vector)
    {
        var state = KvBlockHashes.Block(0x5EED, tokens);
        double norm = 0;
        for (var i = 0; i < vector.Length; i++)
        {
            // SplitMix64: tiny, and the same everywhere.
            state += 0x9E3779B97F4A7C15UL;
            var z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            var value = (z >> 11) * (1.0 / (1UL << 53)) * 2 - 1;
            vector[i] = (float)value;
            norm += value * value;
        }
        var scale = norm > 0 ? 1 / Math.Sqrt(norm) : 0;
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] = (float)(vector[i] * scale);
        }
    }

    private static List<int[]> ParseInput(JsonElement root)
    {
        if (!JsonRequest.TryGet(root, "input", out var input))
        {
            throw new ApiException(ApiError.BadRequest("'input' is required.", "input"));
        }
        const string expected = "a string, an array of strings, an array of token ids or an array of such arrays";
        switch (input.ValueKind)
        {
            case JsonValueKind.String:
                return [SimTokenizer.Encode(input.GetString()!)];
            case JsonValueKind.Array when input.GetArrayLength() == 0:
                throw new ApiException(ApiError.BadRequest("'input' cannot be empty.", "input"));
            case JsonValueKind.Array when input[0].ValueKind == JsonValueKind.Number:
                return [Tokens(input)];
            case JsonValueKind.Array:
                return [.. input.EnumerateArray().Select(item => item.ValueKind switch
                {
                    JsonValueKind.String => SimTokenizer.Encode(item.GetString()!),
                    JsonValueKind.Array => Tokens(item),
                    _ => throw JsonRequest.Invalid("input", expected),
                })];
            default:
                throw JsonRequest.Invalid("input", expected);
        }
    }

    private static int[] Tokens(JsonElement array) =>
        [.. array.EnumerateArray().Select(t => t.ValueKind == JsonValueKind.Number && t.TryGetInt32(out var id) && SimTokenizer.IsValid(id)
            ? id
            : throw new ApiException(ApiError.BadRequest($"Token id {t.GetRawText()} in 'input' is out of vocabulary.", "input")))];
}
