using System.Text;
using System.Text.Json;
using VllmStack.ServiceDefaults.Json;

namespace VllmStack.Router.Forwarding;

/// <summary>What routing needs from a request body: the model, a session key, and (for prefix routing) the prompt as text.</summary>
/// <param name="ModelNotString">The body has a <c>model</c> field that is not a string (a client mistake).</param>
/// <param name="Priority">vLLM's <c>priority</c> (lower first) when an integer; admission control orders a client's queue by it.</param>
/// <param name="MaxTokens"><c>max_tokens</c> or <c>max_completion_tokens</c> when an integer; admission control counts it against token limits.</param>
/// <param name="Stream"><c>stream</c> is <c>true</c>: only such a request's response may be followed for migration.</param>
public sealed record InspectedRequest(string? Model, string? SessionKey, string? PromptText, bool ModelNotString = false, int? Priority = null, int? MaxTokens = null,
    bool Stream = false);

/// <summary>
/// Reads the top-level fields routing needs and checks, on the way, that the whole body is one well-formed JSON
/// object (as the engine's parser will require); the body itself is forwarded untouched, byte for byte. The prompt
/// text is built only when the routing policy asks for it.
/// </summary>
public static class RequestInspector
{
    /// <summary>Deeper than any real request (tool schemas included), far below what would strain the reader.</summary>
    public const int MaxDepth = 256;

    /// <summary>Throws <see cref="JsonException"/> for anything but one complete JSON object (trailing content included).</summary>
    public static InspectedRequest Inspect(ReadOnlySpan<byte> body, string? sessionField, bool wantPrompt)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = MaxDepth });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("The request body must be a JSON object.");
        }
        string? model = null;
        var modelNotString = false;
        string? session = null;
        string? user = null;
        string? prompt = null;
        int? priority = null;
        var stream = false;
        int? maxTokens = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            JsonEscapes.CheckDecodable(ref reader);
            var isModel = reader.ValueTextEquals("model"u8);
            var isUser = reader.ValueTextEquals("user"u8);
            var isSession = sessionField is not null && reader.ValueTextEquals(sessionField);
            var isMessages = wantPrompt && reader.ValueTextEquals("messages"u8);
            var isPrompt = wantPrompt && (reader.ValueTextEquals("prompt"u8) || reader.ValueTextEquals("input"u8));
            var isPriority = reader.ValueTextEquals("priority"u8);
            var isMaxTokens = reader.ValueTextEquals("max_tokens"u8) || reader.ValueTextEquals("max_completion_tokens"u8);
            var isStream = reader.ValueTextEquals("stream"u8);
            if (!reader.Read())
            {
                break;
            }
            if (isStream)
            {
                stream = reader.TokenType == JsonTokenType.True;
            }
            else if (isModel)
            {
                model = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                modelNotString = reader.TokenType is not (JsonTokenType.String or JsonTokenType.Null);
            }
            else if (isSession && reader.TokenType is JsonTokenType.String or JsonTokenType.Number)
            {
                session = reader.TokenType == JsonTokenType.String ? reader.GetString() : Encoding.UTF8.GetString(reader.ValueSpan);
            }
            else if ((isPriority || isMaxTokens) && LenientInt32(ref reader) is { } number)
            {
                // Read for admission control only; the engine validates them.
                if (isPriority)
                {
                    priority = number;
                }
                else
                {
                    maxTokens = number;
                }
            }
            else if (isUser && reader.TokenType == JsonTokenType.String)
            {
                user = reader.GetString();
            }
            else if ((isMessages || isPrompt) && reader.TokenType is JsonTokenType.StartArray or JsonTokenType.String)
            {
                prompt = PromptText(ref reader);
                continue;
            }
            JsonEscapes.SkipChecked(ref reader);
        }
        if (reader.TokenType != JsonTokenType.EndObject || reader.CurrentDepth != 0 || reader.Read())
        {
            // Read() past the object throws for anything but whitespace; this catches what it lets through.
            throw new JsonException("The request body has content after its JSON object.");
        }
        return new InspectedRequest(model, session ?? user, prompt, modelNotString, priority, maxTokens, stream);
    }

    /// <summary>
    /// An integer as vLLM's request models take it (pydantic's lax mode): a JSON integer, a number with no fraction
    /// (<c>1000.0</c>) or a string of an integer (<c>"1000"</c>); null for anything else. Leaves the reader where it is.
    /// </summary>
    private static int? LenientInt32(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Number)
        {
            return reader.TryGetInt32(out var whole) ? whole
                : reader.TryGetDouble(out var number) && number == Math.Floor(number) && number is >= int.MinValue and <= int.MaxValue ? (int)number
                : null;
        }
        return reader.TokenType == JsonTokenType.String && !reader.ValueIsEscaped
            && System.Buffers.Text.Utf8Parser.TryParse(reader.ValueSpan, out int parsed, out var consumed) && consumed == reader.ValueSpan.Length
            ? parsed
            : null;
    }

    /// <summary>Message roles and contents (or prompt strings / token ids) in order: enough to compare prefixes.</summary>
    private static string PromptText(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return reader.GetString() ?? "";
        }
        var text = new StringBuilder();
        var depth = reader.CurrentDepth;
        while (reader.Read() && reader.CurrentDepth > depth)
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName when reader.ValueTextEquals("role"u8) || reader.ValueTextEquals("content"u8) || reader.ValueTextEquals("text"u8):
                    JsonEscapes.CheckDecodable(ref reader);
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        text.Append(reader.GetString()).Append('\n');
                    }
                    else if (reader.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject)
                    {
                        // Content parts: their "text" fields are read as the loop goes on.
                    }
                    break;
                case JsonTokenType.PropertyName:
                    JsonEscapes.SkipChecked(ref reader);
                    break;
                case JsonTokenType.String when reader.CurrentDepth == depth + 1:
                    text.Append(reader.GetString()).Append('\n');
                    break;
                case JsonTokenType.Number:
                    text.Append(Encoding.UTF8.GetString(reader.ValueSpan)).Append(',');
                    break;
                case JsonTokenType.String:
                    JsonEscapes.CheckDecodable(ref reader);
                    break;
            }
        }
        return text.ToString();
    }
}
