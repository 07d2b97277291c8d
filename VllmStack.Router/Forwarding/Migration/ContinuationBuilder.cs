using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VllmStack.Router.Forwarding.Migration;

/// <summary>The two generation routes a stream can be continued on.</summary>
public enum GenerationRoute
{
    Chat,
    Completions,
}

/// <summary>
/// Which streaming requests can be continued faithfully on another engine, and the continuation request itself: the
/// original body with the answer delivered so far appended — chat: as a final assistant message with vLLM's
/// <c>continue_final_message: true</c> and <c>add_generation_prompt: false</c> (vLLM renders it as the template up to
/// the generation prompt followed by the partial answer, left open); completions: after the prompt — and
/// <c>max_tokens</c> / <c>max_completion_tokens</c> / <c>min_tokens</c> reduced by the tokens already delivered.
/// </summary>
public static class ContinuationBuilder
{
    /// <summary>vLLM's <c>CompletionRequest.max_tokens</c> default: a completion without one stops after 16 tokens.</summary>
    public const int CompletionsDefaultMaxTokens = 16;

    private static readonly JsonSerializerOptions Output = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>What the router learns of a generation request up front (one pass of a <see cref="Utf8JsonReader"/>).</summary>
    /// <param name="Streaming"><c>stream: true</c>: only streams are followed and migrated.</param>
    /// <param name="NotContinuable">Why the stream cannot be continued faithfully; null when it can.</param>
    /// <param name="IncludeUsage">The client asked for a usage chunk (<c>stream_options.include_usage</c>, true once stream_options is given).</param>
    public sealed record Assessment(bool Streaming, string? NotContinuable, bool IncludeUsage);

    /// <summary>
    /// Not continued: several choices (<c>n</c> &gt; 1, several prompts), logprobs (a continuation's would restart their
    /// context), <c>echo</c>, <c>suffix</c>, token-id prompts, and structured output (<c>response_format</c> other than
    /// text, <c>guided_*</c>, <c>structured_outputs</c>: the grammar would start again at the continuation's first token).
    /// Tool calls are refused when they appear in the stream (<see cref="SseFollower"/>).
    /// </summary>
    public static Assessment Assess(ReadOnlySpan<byte> body, GenerationRoute route)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 256 });
        var streaming = false;
        string? notContinuable = null;
        var streamOptions = false;
        var includeUsage = true;
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return new Assessment(false, "not a JSON object", false);
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.GetString()!;
            reader.Read();
            switch (name)
            {
                case "stream":
                    streaming = reader.TokenType == JsonTokenType.True;
                    break;
                case "stream_options" when reader.TokenType == JsonTokenType.StartObject:
                    streamOptions = true;
                    var depth = reader.CurrentDepth;
                    while (reader.Read() && reader.CurrentDepth > depth)
                    {
                        if (reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("include_usage"u8))
                        {
                            reader.Read();
                            includeUsage = reader.TokenType != JsonTokenType.False;
                        }
                    }
                    break;
                case "n" when reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var n) && n > 1:
                    notContinuable ??= "n > 1";
                    break;
                case "best_of" when reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var bestOf) && bestOf > 1:
                    notContinuable ??= "best_of > 1";
                    break;
                case "logprobs" when reader.TokenType is JsonTokenType.True || (route == GenerationRoute.Completions && reader.TokenType == JsonTokenType.Number):
                case "top_logprobs" when reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var top) && top > 0:
                case "prompt_logprobs" when reader.TokenType == JsonTokenType.Number:
                    notContinuable ??= "logprobs";
                    break;
                case "echo" when reader.TokenType == JsonTokenType.True:
                    notContinuable ??= "echo";
                    break;
                case "suffix" when reader.TokenType == JsonTokenType.String:
                    notContinuable ??= "suffix";
                    break;
                case "response_format" when reader.TokenType == JsonTokenType.StartObject:
                    if (!IsTextFormat(ref reader))
                    {
                        notContinuable ??= "structured output";
                    }
                    break;
                case "guided_json" or "guided_regex" or "guided_choice" or "guided_grammar" or "structured_outputs"
                    when reader.TokenType is not JsonTokenType.Null:
                    notContinuable ??= "structured output";
                    break;
                case "prompt" when route == GenerationRoute.Completions && !IsOneTextPrompt(ref reader):
                    notContinuable ??= "prompt is not one string";
                    break;
                case "messages" when route == GenerationRoute.Chat && reader.TokenType != JsonTokenType.StartArray:
                    notContinuable ??= "messages is not a list";
                    break;
            }
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                reader.Skip();
            }
        }
        return new Assessment(streaming, notContinuable, streamOptions && includeUsage);
    }

    private static bool IsTextFormat(ref Utf8JsonReader reader)
    {
        var copy = reader;
        var depth = copy.CurrentDepth;
        while (copy.Read() && copy.CurrentDepth > depth)
        {
            if (copy.CurrentDepth == depth + 1 && copy.TokenType == JsonTokenType.PropertyName && copy.ValueTextEquals("type"u8))
            {
                copy.Read();
                return copy.TokenType == JsonTokenType.String && copy.ValueTextEquals("text"u8);
            }
        }
        return true;
    }

    private static bool IsOneTextPrompt(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return true;
        }
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            return false;
        }
        var copy = reader;
        return copy.Read() && copy.TokenType == JsonTokenType.String && copy.Read() && copy.TokenType == JsonTokenType.EndArray;
    }

    /// <summary>
    /// Where a prefilled final message's text ends: its <c>content</c> string, or the <c>text</c> of its last part when
    /// the content is a list of parts ending in a text part (vLLM joins text parts, so the answer goes on after the last).
    /// </summary>
    private static (JsonObject Owner, string Key, string Text)? PrefillText(JsonObject final) => final["content"] switch
    {
        JsonValue value when value.GetValueKind() == JsonValueKind.String => (final, "content", value.GetValue<string>()),
        JsonArray { Count: > 0 } parts when parts[^1] is JsonObject part && part["type"]?.GetValueKind() == JsonValueKind.String
            && part["type"]!.GetValue<string>() == "text" && part["text"]?.GetValueKind() == JsonValueKind.String
            => (part, "text", part["text"]!.GetValue<string>()),
        _ => null,
    };

    /// <summary>
    /// The continuation of <paramref name="original"/> once <paramref name="deliveredText"/> (<paramref name="deliveredTokens"/>
    /// tokens) reached the client; null when nothing is left to generate (a token limit reached).
    /// </summary>
    public static byte[]? Build(ReadOnlySpan<byte> original, GenerationRoute route, string deliveredText, int deliveredTokens)
    {
        if (deliveredText.Length == 0 && deliveredTokens == 0)
        {
            // Nothing of the answer went out (the engine failed before its first token): the request itself starts it
            // again. (An empty final message would not do: a template that ends the message after its content would close it.)
            return original.ToArray();
        }
        var body = JsonNode.Parse(original)!.AsObject();
        if (route == GenerationRoute.Chat)
        {
            var messages = body["messages"]!.AsArray();
            var prefill = body["continue_final_message"]?.GetValueKind() == JsonValueKind.True && messages.Count > 0 && messages[^1] is JsonObject final
                ? PrefillText(final)
                : null;
            if (prefill is not null)
            {
                // The client prefilled the answer itself: the delivered text goes on after its prefill.
                prefill.Value.Owner[prefill.Value.Key] = prefill.Value.Text + deliveredText;
            }
            else
            {
                messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = deliveredText });
            }
            body["continue_final_message"] = true;
            body["add_generation_prompt"] = false;
            if (!Reduce(body, "max_completion_tokens", deliveredTokens) | !Reduce(body, "max_tokens", deliveredTokens))
            {
                return null;
            }
        }
        else
        {
            var prompt = body["prompt"]!;
            var text = prompt is JsonArray array ? array[0]!.GetValue<string>() : prompt.GetValue<string>();
            body["prompt"] = text + deliveredText;
            body["max_tokens"] ??= CompletionsDefaultMaxTokens;
            if (!Reduce(body, "max_tokens", deliveredTokens))
            {
                return null;
            }
        }
        if (body["min_tokens"] is JsonValue min && min.GetValueKind() == JsonValueKind.Number && int.TryParse(min.ToJsonString(), out var minTokens))
        {
            body["min_tokens"] = Math.Max(0, minTokens - deliveredTokens);
        }
        return JsonSerializer.SerializeToUtf8Bytes(body, Output);
    }

    /// <summary>Lowers a token limit by what was delivered; false when none is left.</summary>
    private static bool Reduce(JsonObject body, string field, int delivered)
    {
        if (body[field] is not JsonValue value || value.GetValueKind() != JsonValueKind.Number
            || !double.TryParse(value.ToJsonString(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var number))
        {
            // Absent or null: the engine's default (chat: what the context leaves).
            return true;
        }
        var limit = (long)number;
        var left = limit - delivered;
        if (left < 1)
        {
            return false;
        }
        body[field] = left;
        return true;
    }
}
