using System.Text.Json;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;
using VllmStack.EngineSim.Tokenization;

namespace VllmStack.EngineSim.Api;

public enum GenerationKind
{
    Chat,
    Completion,
}

/// <summary>One prompt of a request: its token ids, and the tokens echo mode repeats back.</summary>
public sealed record PromptInput(int[] Tokens, int[] EchoTokens, string? Text);

/// <summary>A chat or completion request, parsed and checked against the engine's limits.</summary>
public sealed class GenerationRequest
{
    public required GenerationKind Kind { get; init; }

    public required ModelTarget Target { get; init; }

    public required IReadOnlyList<PromptInput> Prompts { get; init; }

    public int N { get; init; } = 1;

    public bool Stream { get; init; }

    public bool IncludeUsage { get; init; }

    public bool EchoPrompt { get; init; }

    public long? Seed { get; init; }

    /// <summary>Per prompt: max_tokens, or what is left of the context when the request sets none.</summary>
    public required IReadOnlyList<GenerationParams> Params { get; init; }

    public static GenerationRequest Parse(JsonElement body, GenerationKind kind, EngineOptions options, ModelCatalog catalog, int? abortAfterTokens)
    {
        var model = JsonRequest.String(body, "model");
        var target = catalog.Resolve(model) ?? throw new ApiException(ApiError.ModelNotFound(model!));
        var prompts = kind == GenerationKind.Chat ? [ParseMessages(body)] : ParsePrompt(body);

        var n = JsonRequest.Int(body, "n", 1, 128) ?? 1;
        var maxTokens = JsonRequest.Int(body, "max_completion_tokens", 1) ?? JsonRequest.Int(body, "max_tokens", 1);
        var minTokens = JsonRequest.Int(body, "min_tokens", 0) ?? 0;
        if (maxTokens is { } max && minTokens > max)
        {
            throw new ApiException(ApiError.BadRequest($"'min_tokens' ({minTokens}) must be less than or equal to 'max_tokens' ({max}).", "min_tokens"));
        }
        JsonRequest.Number(body, "temperature", 0, 2);
        JsonRequest.Number(body, "top_p", double.Epsilon, 1);
        JsonRequest.Number(body, "presence_penalty", -2, 2);
        JsonRequest.Number(body, "frequency_penalty", -2, 2);
        var stream = JsonRequest.Bool(body, "stream", false);
        var includeUsage = false;
        if (JsonRequest.TryGet(body, "stream_options", out var streamOptions))
        {
            if (streamOptions.ValueKind != JsonValueKind.Object)
            {
                throw JsonRequest.Invalid("stream_options", "an object");
            }
            if (!stream)
            {
                throw new ApiException(ApiError.BadRequest("'stream_options' can only be set when 'stream' is true.", "stream_options"));
            }
            includeUsage = JsonRequest.Bool(streamOptions, "include_usage", false);
        }
        var stop = JsonRequest.StringOrStrings(body, "stop");
        var stopTokenIds = JsonRequest.Ints(body, "stop_token_ids").ToHashSet();
        var ignoreEos = JsonRequest.Bool(body, "ignore_eos", false);
        var includeStop = JsonRequest.Bool(body, "include_stop_str_in_output", false);
        var seed = JsonRequest.Long(body, "seed");
        var echo = kind == GenerationKind.Completion && JsonRequest.Bool(body, "echo", false);

        var parameters = new List<GenerationParams>(prompts.Count);
        foreach (var prompt in prompts)
        {
            var length = prompt.Tokens.Length;
            var what = kind == GenerationKind.Chat ? "messages" : "prompt";
            if (length > options.MaxModelLen || (maxTokens is { } m && length + m > options.MaxModelLen) || length == options.MaxModelLen)
            {
                var requested = length + (maxTokens ?? 1);
                throw new ApiException(ApiError.BadRequest(
                    $"This model's maximum context length is {options.MaxModelLen} tokens. However, you requested {requested} tokens " +
                    $"({length} in the {what}, {maxTokens ?? 1} in the completion). Please reduce the length of the {what} or completion.",
                    maxTokens is null ? what : "max_tokens"));
            }
            var limit = maxTokens ?? options.MaxModelLen - length;
            parameters.Add(new GenerationParams(limit, Math.Min(minTokens, limit), ignoreEos, stop, includeStop, stopTokenIds, abortAfterTokens));
        }

        return new GenerationRequest
        {
            Kind = kind,
            Target = target,
            Prompts = prompts,
            N = n,
            Stream = stream,
            IncludeUsage = includeUsage,
            EchoPrompt = echo,
            Seed = seed,
            Params = parameters,
        };
    }

    internal static PromptInput ParseMessages(JsonElement body, bool addGenerationPrompt = true)
    {
        if (!JsonRequest.TryGet(body, "messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
        {
            throw new ApiException(ApiError.BadRequest("'messages' is required and must be an array of messages.", "messages"));
        }
        if (messages.GetArrayLength() == 0)
        {
            throw new ApiException(ApiError.BadRequest("'messages' must contain at least one message.", "messages"));
        }
        var parsed = new List<ChatMessage>(messages.GetArrayLength());
        var index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            var param = $"messages[{index}]";
            if (message.ValueKind != JsonValueKind.Object)
            {
                throw new ApiException(ApiError.BadRequest($"'{param}' must be an object with 'role' and 'content'.", param));
            }
            var role = message.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : null;
            if (role is not ("system" or "developer" or "user" or "assistant" or "tool"))
            {
                throw new ApiException(ApiError.BadRequest($"'{param}.role' must be one of system, developer, user, assistant, tool.", $"{param}.role"));
            }
            parsed.Add(new ChatMessage(role, ContentText(message, param)));
            index++;
        }
        var text = ChatTemplate.Render(parsed, addGenerationPrompt);
        var lastUser = parsed.LastOrDefault(m => m.Role == "user")?.Content ?? parsed[^1].Content;
        return new PromptInput(SimTokenizer.Encode(text, parseSpecial: true), SimTokenizer.Encode(lastUser), text);
    }

    private static string ContentText(JsonElement message, string param)
    {
        if (!message.TryGetProperty("content", out var content) || content.ValueKind == JsonValueKind.Null)
        {
            return "";
        }
        if (content.ValueKind == JsonValueKind.String)
        {
            return content.GetString()!;
        }
        if (content.ValueKind != JsonValueKind.Array)
        {
            throw new ApiException(ApiError.BadRequest($"'{param}.content' must be a string or an array of content parts.", $"{param}.content"));
        }
        var parts = new List<string>();
        foreach (var part in content.EnumerateArray())
        {
            var type = part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var t) ? t.GetString() : null;
            if (type != "text" || !part.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
            {
                throw new ApiException(ApiError.BadRequest($"'{param}.content' may hold only text parts ({{\"type\":\"text\",\"text\":…}}): this model takes no other input.", $"{param}.content"));
            }
            parts.Add(text.GetString()!);
        }
        return string.Join("\n", parts);
    }

    private static List<PromptInput> ParsePrompt(JsonElement body)
    {
        if (!JsonRequest.TryGet(body, "prompt", out var prompt))
        {
            throw new ApiException(ApiError.BadRequest("'prompt' is required.", "prompt"));
        }
        switch (prompt.ValueKind)
        {
            case JsonValueKind.String:
                return [FromText(prompt.GetString()!)];
            case JsonValueKind.Array when prompt.GetArrayLength() == 0:
                throw new ApiException(ApiError.BadRequest("'prompt' cannot be empty.", "prompt"));
            case JsonValueKind.Array:
                var first = prompt[0].ValueKind;
                if (first == JsonValueKind.Number)
                {
                    return [FromTokens(prompt)];
                }
                var result = new List<PromptInput>();
                foreach (var item in prompt.EnumerateArray())
                {
                    result.Add(item.ValueKind switch
                    {
                        JsonValueKind.String => FromText(item.GetString()!),
                        JsonValueKind.Array when item.GetArrayLength() > 0 => FromTokens(item),
                        _ => throw JsonRequest.Invalid("prompt", "a string, an array of strings, an array of token ids or an array of such arrays"),
                    });
                }
                return result;
            default:
                throw JsonRequest.Invalid("prompt", "a string, an array of strings, an array of token ids or an array of such arrays");
        }
    }

    private static PromptInput FromText(string text)
    {
        var body = SimTokenizer.Encode(text);
        return new PromptInput([SimTokenizer.BeginOfTextId, .. body], body, text);
    }

    private static PromptInput FromTokens(JsonElement array)
    {
        var tokens = new int[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out var id) || !SimTokenizer.IsValid(id))
            {
                throw new ApiException(ApiError.BadRequest($"Token id {item.GetRawText()} in 'prompt' is out of vocabulary.", "prompt"));
            }
            tokens[i++] = id;
        }
        return new PromptInput(tokens, tokens.Where(t => !SimTokenizer.IsSpecial(t)).ToArray(), null);
    }
}
