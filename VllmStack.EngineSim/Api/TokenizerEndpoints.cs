using System.Text.Json;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;
using VllmStack.EngineSim.Tokenization;

namespace VllmStack.EngineSim.Api;

/// <summary><c>/tokenize</c> and <c>/detokenize</c> with the same tokenizer the engine counts with.</summary>
public static class TokenizerEndpoints
{
    public static void Map(IEndpointRouteBuilder app, EngineOptions options)
    {
        app.MapPost("/tokenize", async (HttpContext context, ModelCatalog catalog) =>
        {
            using var body = await JsonRequest.ReadAsync(context.Request, context.RequestAborted);
            var root = body.RootElement;
            RequireModel(root, catalog);
            int[] tokens;
            if (JsonRequest.TryGet(root, "messages", out _))
            {
                // Same rendering as a chat request, so counts agree with what /v1/chat/completions charges.
                tokens = GenerationRequest.ParseMessages(root).Tokens;
            }
            else
            {
                var prompt = JsonRequest.String(root, "prompt") ?? throw new ApiException(ApiError.BadRequest("Either 'prompt' or 'messages' is required.", "prompt"));
                var body2 = SimTokenizer.Encode(prompt);
                tokens = JsonRequest.Bool(root, "add_special_tokens", true) ? [SimTokenizer.BeginOfTextId, .. body2] : body2;
            }
            var returnStrings = JsonRequest.Bool(root, "return_token_strs", false);
            await ModelEndpoints.WriteJson(context, w =>
            {
                w.WriteStartObject();
                w.WriteNumber("count", tokens.Length);
                w.WriteNumber("max_model_len", options.MaxModelLen);
                w.WriteStartArray("tokens");
                foreach (var token in tokens)
                {
                    w.WriteNumberValue(token);
                }
                w.WriteEndArray();
                if (returnStrings)
                {
                    w.WriteStartArray("token_strs");
                    foreach (var token in tokens)
                    {
                        w.WriteStringValue(SimTokenizer.Decode([token]));
                    }
                    w.WriteEndArray();
                }
                else
                {
                    w.WriteNull("token_strs");
                }
                w.WriteEndObject();
            });
        });

        app.MapPost("/detokenize", async (HttpContext context, ModelCatalog catalog) =>
        {
            using var body = await JsonRequest.ReadAsync(context.Request, context.RequestAborted);
            RequireModel(body.RootElement, catalog);
            if (!JsonRequest.TryGet(body.RootElement, "tokens", out _))
            {
                throw new ApiException(ApiError.BadRequest("'tokens' is required.", "tokens"));
            }
            var tokens = JsonRequest.Ints(body.RootElement, "tokens").ToArray();
            foreach (var token in tokens)
            {
                if (!SimTokenizer.IsValid(token))
                {
                    throw new ApiException(ApiError.BadRequest($"Token id {token} is out of vocabulary.", "tokens"));
                }
            }
            var text = SimTokenizer.Decode(tokens);
            await ModelEndpoints.WriteJson(context, w =>
            {
                w.WriteStartObject();
                w.WriteString("prompt", text);
                w.WriteEndObject();
            });
        });
    }

    private static void RequireModel(JsonElement root, ModelCatalog catalog)
    {
        var model = JsonRequest.String(root, "model");
        if (catalog.Resolve(model) is null)
        {
            throw new ApiException(ApiError.ModelNotFound(model!));
        }
    }
}
