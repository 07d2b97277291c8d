using System.Globalization;
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

/// <summary>
/// A chat or completion request, parsed and checked in vLLM's order: the schema first (pydantic's lax types and vLLM's
/// model validators: 400 "Bad Request"), then the model (404), then what the serving code checks (context length,
/// tool choice, sampling parameters, priority: 400 <c>BadRequestError</c>), each with vLLM 0.11's wording.
/// </summary>
public sealed class GenerationRequest
{
    public required GenerationKind Kind { get; init; }

    public required ModelTarget Target { get; init; }

    /// <summary>The <c>model</c> of the response: vLLM's first served name, or the adapter's name — never the alias asked for.</summary>
    public required string ResponseModel { get; init; }

    public required IReadOnlyList<PromptInput> Prompts { get; init; }

    public int N { get; init; } = 1;

    public bool Stream { get; init; }

    /// <summary>A final usage chunk (<c>stream_options.include_usage</c>, true by default once <c>stream_options</c> is given).</summary>
    public bool IncludeUsage { get; init; }

    /// <summary>Usage on every chunk (<c>stream_options.continuous_usage_stats</c>).</summary>
    public bool IncludeContinuousUsage { get; init; }

    /// <summary>Completions' <c>echo</c>: the prompt comes back before the answer.</summary>
    public bool EchoPrompt { get; init; }

    /// <summary>Chat's <c>echo</c>: the last message's content, when its role is the answer's role; prepended to the answer.</summary>
    public string? ChatEcho { get; init; }

    /// <summary>The role of the answer: the response role, or the last message's role when no generation prompt is added.</summary>
    public string Role { get; init; } = "assistant";

    public long? Seed { get; init; }

    /// <summary>The request's <c>priority</c> (lower first, with <c>--scheduling-policy priority</c>).</summary>
    public int Priority { get; init; }

    /// <summary>Top alternatives per generated token when logprobs are asked for (chat <c>top_logprobs</c>, completions <c>logprobs</c>); null: none.</summary>
    public int? TopLogprobs { get; init; }

    /// <summary><c>prompt_logprobs</c>: alternatives per prompt token; null: none.</summary>
    public int? PromptLogprobs { get; init; }

    /// <summary>Per prompt: max_tokens, or what is left of the context when the request sets none.</summary>
    public required IReadOnlyList<GenerationParams> Params { get; init; }

    /// <summary>vLLM's default for completions' <c>max_tokens</c> (<c>CompletionRequest.max_tokens = 16</c>).</summary>
    public const int CompletionDefaultMaxTokens = 16;

    public static GenerationRequest Parse(JsonElement body, GenerationKind kind, EngineOptions options, ModelCatalog catalog, int? abortAfterTokens)
    {
        var chat = kind == GenerationKind.Chat;

        // 1. The schema, as pydantic validates ChatCompletionRequest / CompletionRequest (before the model is looked at).
        var model = JsonRequest.String(body, "model");
        var n = JsonRequest.LaxInt(body, "n") ?? 1;
        var maxTokens = (chat ? JsonRequest.LaxInt(body, "max_completion_tokens") : null) ?? JsonRequest.LaxInt(body, "max_tokens");
        var minTokens = JsonRequest.LaxInt(body, "min_tokens") ?? 0;
        var temperature = JsonRequest.LaxNumber(body, "temperature");
        var topP = JsonRequest.LaxNumber(body, "top_p");
        var topK = JsonRequest.LaxInt(body, "top_k");
        var presencePenalty = JsonRequest.LaxNumber(body, "presence_penalty");
        var frequencyPenalty = JsonRequest.LaxNumber(body, "frequency_penalty");
        var seed = JsonRequest.LaxLong(body, "seed");
        var stream = JsonRequest.Bool(body, "stream", false);
        var stop = JsonRequest.StringOrStrings(body, "stop");
        var stopTokenIds = JsonRequest.Ints(body, "stop_token_ids").ToHashSet();
        var ignoreEos = JsonRequest.Bool(body, "ignore_eos", false);
        var includeStop = JsonRequest.Bool(body, "include_stop_str_in_output", false);
        var echo = JsonRequest.Bool(body, "echo", false);
        var priority = JsonRequest.LaxInt(body, "priority") ?? 0;
        var promptLogprobs = JsonRequest.LaxInt(body, "prompt_logprobs");
        var (includeUsage, continuousUsage, streamOptionsGiven) = StreamOptions(body, options);
        if (streamOptionsGiven && !stream)
        {
            throw new ApiException(ApiError.Validation("Stream options can only be defined when `stream=True`."));
        }
        if (promptLogprobs is { } pl)
        {
            if (stream && pl > 0)
            {
                throw new ApiException(ApiError.Validation("`prompt_logprobs` are not available when `stream=True`."));
            }
            if (pl < 0)
            {
                throw new ApiException(ApiError.Validation("`prompt_logprobs` must be a positive value."));
            }
        }
        int? topLogprobs;
        var addGenerationPrompt = true;
        var continueFinalMessage = false;
        ChatRequestParts? chatParts = null;
        if (chat)
        {
            var logprobs = JsonRequest.Bool(body, "logprobs", false);
            var top = JsonRequest.LaxInt(body, "top_logprobs");
            if (top < 0)
            {
                throw new ApiException(ApiError.Validation("`top_logprobs` must be a positive value."));
            }
            if (top > 0 && !logprobs)
            {
                throw new ApiException(ApiError.Validation("when using `top_logprobs`, `logprobs` must be set to true."));
            }
            topLogprobs = logprobs ? top ?? 0 : null;
            chatParts = ChatRequestParts.Read(body);
            addGenerationPrompt = chatParts.AddGenerationPrompt;
            continueFinalMessage = chatParts.ContinueFinalMessage;
        }
        else
        {
            topLogprobs = JsonRequest.LaxInt(body, "logprobs");
            if (topLogprobs < 0)
            {
                throw new ApiException(ApiError.Validation("`logprobs` must be a positive value."));
            }
            if (!JsonRequest.TryGet(body, "prompt", out _))
            {
                throw new ApiException(ApiError.Validation("At least one of `prompt` or `prompt_embeds` must be set."));
            }
        }

        // 2. The model.
        var target = catalog.Resolve(model) ?? throw new ApiException(ApiError.ModelNotFound(model!));

        // 3. What the serving code checks, in its order.
        if (chatParts is { ToolChoice: "auto" } && !(options.EnableAutoToolChoice && options.ToolCallParser is not null))
        {
            throw new ApiException(ApiError.BadRequest("\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set"));
        }
        if (!chat && JsonRequest.String(body, "suffix") is not null)
        {
            throw new ApiException(ApiError.BadRequest("suffix is not currently supported"));
        }
        var prompts = chat ? [chatParts!.Render()] : ParsePrompt(body);
        var parameters = new List<GenerationParams>(prompts.Count);
        foreach (var prompt in prompts)
        {
            var limit = ContextLimit(prompt.Tokens.Length, maxTokens, chat, options);
            if (minTokens < 0)
            {
                throw new ApiException(ApiError.BadRequest($"min_tokens must be greater than or equal to 0, got {minTokens}."));
            }
            if (minTokens > limit)
            {
                throw new ApiException(ApiError.BadRequest($"min_tokens must be less than or equal to max_tokens={limit}, got {minTokens}."));
            }
            parameters.Add(new GenerationParams(limit, minTokens, ignoreEos, stop, includeStop, stopTokenIds, abortAfterTokens));
        }
        CheckSamplingParams(n, temperature, topP, topK, presencePenalty, frequencyPenalty, maxTokens);
        if (topLogprobs > options.MaxLogprobs)
        {
            throw new ApiException(ApiError.BadRequest($"Requested sample logprobs of {topLogprobs}, which is greater than max allowed: {options.MaxLogprobs}"));
        }
        if (promptLogprobs > options.MaxLogprobs)
        {
            throw new ApiException(ApiError.BadRequest($"Requested prompt logprobs of {promptLogprobs}, which is greater than max allowed: {options.MaxLogprobs}"));
        }
        if (priority != 0 && options.SchedulingPolicy != SchedulingPolicy.Priority)
        {
            throw new ApiException(ApiError.BadRequest($"Got priority {priority} but Priority scheduling is not enabled."));
        }

        var role = chat ? addGenerationPrompt ? options.ResponseRole : chatParts!.Messages[^1].Role : "assistant";
        return new GenerationRequest
        {
            Kind = kind,
            Target = target,
            ResponseModel = target.Lora ?? options.PrimaryModelName,
            Prompts = prompts,
            N = n,
            Stream = stream,
            IncludeUsage = includeUsage,
            IncludeContinuousUsage = continuousUsage,
            EchoPrompt = !chat && echo,
            ChatEcho = chat && echo && chatParts!.Messages[^1].Role == role && chatParts.Messages[^1].Content.Length > 0 ? chatParts.Messages[^1].Content : null,
            Role = role,
            Seed = seed,
            Priority = priority,
            TopLogprobs = topLogprobs,
            PromptLogprobs = promptLogprobs,
            Params = parameters,
        };
    }

    /// <summary>
    /// vLLM's <c>should_include_usage</c>: with <c>stream_options</c> given, <c>include_usage</c> defaults to true (or is forced
    /// by <c>--enable-force-include-usage</c>) and continuous stats follow it; without, only the server flag decides.
    /// </summary>
    private static (bool IncludeUsage, bool Continuous, bool Given) StreamOptions(JsonElement body, EngineOptions options)
    {
        if (!JsonRequest.TryGet(body, "stream_options", out var streamOptions))
        {
            return (options.EnableForceIncludeUsage, false, false);
        }
        if (streamOptions.ValueKind != JsonValueKind.Object)
        {
            throw JsonRequest.Invalid("stream_options", "a valid dictionary or instance of StreamOptions");
        }
        var include = JsonRequest.Bool(streamOptions, "include_usage", true) || options.EnableForceIncludeUsage;
        var continuous = include && JsonRequest.Bool(streamOptions, "continuous_usage_stats", false);
        // Python's truthiness: an empty object passes vLLM's "stream options need stream" check.
        return (include, continuous, streamOptions.EnumerateObject().Any());
    }

    /// <summary>
    /// How many tokens the request may generate, or vLLM 0.11's context-length error (<c>_validate_input</c>). Chat
    /// prefixes the reason with its exception's cause, which is <c>None</c>, as vLLM's chat preprocessing does.
    /// </summary>
    private static int ContextLimit(int inputTokens, int? maxTokens, bool chat, EngineOptions options)
    {
        var window = options.MaxModelLen;
        var suffix = chat ? " None" : "";
        if (inputTokens >= window)
        {
            throw new ApiException(ApiError.BadRequest(
                $"This model's maximum context length is {window} tokens. However, your request has {inputTokens} input tokens. Please reduce the length of the input messages.{suffix}"));
        }
        if (maxTokens is { } asked && inputTokens + asked > window)
        {
            throw new ApiException(ApiError.BadRequest(
                $"'max_tokens' or 'max_completion_tokens' is too large: {asked}. This model's maximum context length is {window} tokens and your request has {inputTokens} input tokens ({asked} > {window} - {inputTokens}).{suffix}"));
        }
        var remaining = window - inputTokens;
        return maxTokens ?? (chat ? remaining : Math.Min(CompletionDefaultMaxTokens, remaining));
    }

    /// <summary>vLLM's <c>SamplingParams._verify_args</c>: ranges, each refused with its message.</summary>
    private static void CheckSamplingParams(int n, double? temperature, double? topP, int? topK, double? presencePenalty, double? frequencyPenalty, int? maxTokens)
    {
        static string Number(double value) => value.ToString("0.0###############", CultureInfo.InvariantCulture);
        if (n < 1)
        {
            throw new ApiException(ApiError.BadRequest($"n must be at least 1, got {n}."));
        }
        if (presencePenalty is { } presence && presence is < -2 or > 2)
        {
            throw new ApiException(ApiError.BadRequest($"presence_penalty must be in [-2, 2], got {Number(presence)}."));
        }
        if (frequencyPenalty is { } frequency && frequency is < -2 or > 2)
        {
            throw new ApiException(ApiError.BadRequest($"frequency_penalty must be in [-2, 2], got {Number(frequency)}."));
        }
        if (temperature is { } t && t < 0)
        {
            throw new ApiException(ApiError.BadRequest($"temperature must be non-negative, got {Number(t)}."));
        }
        if (topP is { } p && p is <= 0 or > 1)
        {
            throw new ApiException(ApiError.BadRequest($"top_p must be in (0, 1], got {Number(p)}."));
        }
        if (topK is < -1)
        {
            throw new ApiException(ApiError.BadRequest($"top_k must be 0 (disable), or at least 1, got {topK}."));
        }
        if (maxTokens is < 1)
        {
            throw new ApiException(ApiError.BadRequest($"max_tokens must be at least 1, got {maxTokens}."));
        }
    }

    /// <summary>The chat template of a request's messages, as <c>/v1/chat/completions</c> and <c>/tokenize</c> both render it.</summary>
    internal static PromptInput ParseMessages(JsonElement body, bool? addGenerationPromptDefault = null) => ChatRequestParts.Read(body, addGenerationPromptDefault).Render();

    private static List<PromptInput> ParsePrompt(JsonElement body)
    {
        var prompt = body.GetProperty("prompt");
        const string expected = "a string, an array of strings, an array of token ids or an array of such arrays";
        switch (prompt.ValueKind)
        {
            case JsonValueKind.String:
                return [FromText(prompt.GetString()!)];
            case JsonValueKind.Array when prompt.GetArrayLength() == 0:
                throw new ApiException(ApiError.BadRequest("Either prompt or prompt_embeds must be provided and non-empty."));
            case JsonValueKind.Array when prompt[0].ValueKind == JsonValueKind.Number:
                return [FromTokens(prompt)];
            case JsonValueKind.Array:
                var result = new List<PromptInput>();
                foreach (var item in prompt.EnumerateArray())
                {
                    result.Add(item.ValueKind switch
                    {
                        JsonValueKind.String => FromText(item.GetString()!),
                        JsonValueKind.Array when item.GetArrayLength() > 0 => FromTokens(item),
                        _ => throw JsonRequest.Invalid("prompt", expected),
                    });
                }
                return result;
            default:
                throw JsonRequest.Invalid("prompt", expected);
        }
    }

    private static PromptInput FromText(string text)
    {
        if (text.Length == 0)
        {
            throw new ApiException(ApiError.BadRequest("Either prompt or prompt_embeds must be provided and non-empty."));
        }
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

/// <summary>
/// The chat-template inputs of a request (messages, tools, generation prompt), checked as vLLM's schema checks them:
/// any role string (custom roles such as Llama 3.1's <c>ipython</c> go to the template), text content, vLLM's
/// <c>check_tool_usage</c> and <c>check_generation_prompt</c> validators.
/// </summary>
internal sealed record ChatRequestParts(IReadOnlyList<ChatMessage> Messages, bool AddGenerationPrompt, bool ContinueFinalMessage, string? ToolsJson, string ToolChoice)
{
    public static ChatRequestParts Read(JsonElement body, bool? addGenerationPromptDefault = null)
    {
        if (!JsonRequest.TryGet(body, "messages", out var messages))
        {
            throw new ApiException(ApiError.Validation("messages: Field required"));
        }
        if (messages.ValueKind != JsonValueKind.Array)
        {
            throw JsonRequest.Invalid("messages", "a valid list");
        }
        if (messages.GetArrayLength() == 0)
        {
            throw new ApiException(ApiError.BadRequest("'messages' must contain at least one message."));
        }
        var parsed = new List<ChatMessage>(messages.GetArrayLength());
        var index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            var field = $"messages.{index}";
            if (message.ValueKind != JsonValueKind.Object)
            {
                throw JsonRequest.Invalid(field, "a valid dictionary");
            }
            if (!JsonRequest.TryGet(message, "role", out var role))
            {
                throw new ApiException(ApiError.Validation($"{field}.role: Field required"));
            }
            if (role.ValueKind != JsonValueKind.String)
            {
                throw JsonRequest.Invalid($"{field}.role", "a valid string");
            }
            parsed.Add(new ChatMessage(role.GetString()!, ContentText(message, field)));
            index++;
        }
        var addGenerationPrompt = JsonRequest.Bool(body, "add_generation_prompt", addGenerationPromptDefault ?? true);
        var continueFinalMessage = JsonRequest.Bool(body, "continue_final_message", false);
        if (addGenerationPrompt && continueFinalMessage)
        {
            throw new ApiException(ApiError.Validation("Cannot set both `continue_final_message` and `add_generation_prompt` to True."));
        }
        var (toolsJson, toolChoice) = Tools(body);
        return new ChatRequestParts(parsed, addGenerationPrompt, continueFinalMessage, toolsJson, toolChoice);
    }

    public PromptInput Render()
    {
        var text = ChatTemplate.Render(Messages, AddGenerationPrompt, ContinueFinalMessage, ToolsJson);
        var lastUser = Messages.LastOrDefault(m => m.Role == "user")?.Content ?? Messages[^1].Content;
        return new PromptInput(SimTokenizer.Encode(text, parseSpecial: true), SimTokenizer.Encode(lastUser), text);
    }

    /// <summary>vLLM's <c>check_tool_usage</c>: tools without a choice mean "auto"; a choice needs tools; a named choice must name one.</summary>
    private static (string? ToolsJson, string ToolChoice) Tools(JsonElement body)
    {
        JsonRequest.TryGet(body, "tools", out var tools);
        if (tools.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Array))
        {
            throw JsonRequest.Invalid("tools", "a valid list");
        }
        var names = new List<string>();
        if (tools.ValueKind == JsonValueKind.Array)
        {
            var index = 0;
            foreach (var tool in tools.EnumerateArray())
            {
                if (tool.ValueKind != JsonValueKind.Object || !tool.TryGetProperty("function", out var function) || function.ValueKind != JsonValueKind.Object)
                {
                    throw new ApiException(ApiError.Validation($"tools.{index}.function: Field required"));
                }
                names.Add(JsonRequest.String(function, "name") ?? throw new ApiException(ApiError.Validation($"tools.{index}.function.name: Field required")));
                index++;
            }
        }
        var hasTools = tools.ValueKind == JsonValueKind.Array;
        var choiceGiven = body.TryGetProperty("tool_choice", out var choice) && choice.ValueKind != JsonValueKind.Null;
        if (!choiceGiven)
        {
            return (hasTools ? Rendered(tools) : null, names.Count > 0 ? "auto" : "none");
        }
        if (choice.ValueKind == JsonValueKind.String && choice.GetString() == "none")
        {
            return (hasTools ? Rendered(tools) : null, "none");
        }
        if (!hasTools)
        {
            throw new ApiException(ApiError.Validation("When using `tool_choice`, `tools` must be set."));
        }
        if (choice.ValueKind == JsonValueKind.String)
        {
            var value = choice.GetString()!;
            if (value is not ("auto" or "required"))
            {
                throw new ApiException(ApiError.Validation($"Invalid value for `tool_choice`: {value}! Only named tools, \"none\", \"auto\" or \"required\" are supported."));
            }
            return names.Count == 0 && value == "required" ? (null, "none") : (Rendered(tools), value);
        }
        if (choice.ValueKind != JsonValueKind.Object)
        {
            throw JsonRequest.Invalid("tool_choice", "'none', 'auto', 'required' or a named tool");
        }
        const string usage = "Correct usage: `{\"type\": \"function\", \"function\": {\"name\": \"my_function\"}}`";
        if (!choice.TryGetProperty("function", out var named) || named.ValueKind != JsonValueKind.Object)
        {
            throw new ApiException(ApiError.Validation($"Invalid value for `function`: `{(choice.TryGetProperty("function", out var f) ? f.GetRawText() : "None")}` in `tool_choice`! {usage}"));
        }
        if (!named.TryGetProperty("name", out var name))
        {
            throw new ApiException(ApiError.Validation($"Expected field `name` in `function` in `tool_choice`! {usage}"));
        }
        if (name.ValueKind != JsonValueKind.String || name.GetString()!.Length == 0)
        {
            throw new ApiException(ApiError.Validation($"Invalid `name` in `function`: `{name.GetRawText()}` in `tool_choice`! {usage}"));
        }
        if (!names.Contains(name.GetString()!, StringComparer.Ordinal))
        {
            throw new ApiException(ApiError.Validation("The tool specified in `tool_choice` does not match any of the specified `tools`"));
        }
        return (Rendered(tools), "named");
    }

    /// <summary>
    /// The tools as the chat template renders them: re-serialised, as vLLM's templates do with <c>tojson</c>, so the
    /// client's spacing does not change the prompt (a router's re-serialised continuation must render alike).
    /// </summary>
    private static string Rendered(JsonElement tools) => JsonSerializer.Serialize(tools);

    private static string ContentText(JsonElement message, string field)
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
            throw JsonRequest.Invalid($"{field}.content", "a valid string or a list of content parts");
        }
        var parts = new List<string>();
        foreach (var part in content.EnumerateArray())
        {
            var type = part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var t) ? t.GetString() : null;
            if (type != "text" || !part.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
            {
                throw new ApiException(ApiError.BadRequest($"'{field}.content' may hold only text parts ({{\"type\":\"text\",\"text\":…}}): this model takes no other input."));
            }
            parts.Add(text.GetString()!);
        }
        return string.Join("\n", parts);
    }
}
