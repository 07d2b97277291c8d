using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VllmStack.Router.Forwarding.Migration;

/// <summary>
/// Follows the server-sent events of a chat or completions stream the router may have to continue elsewhere. Bytes are
/// passed on whole events at a time (so that a failure never leaves half an event at the client) and, from the first
/// engine, unchanged; each event's <c>data:</c> JSON is read once with a <see cref="Utf8JsonReader"/> for what a
/// continuation needs: the text delivered, the completion tokens delivered, the finish reason, usage, <c>[DONE]</c>.
/// <para>
/// After <see cref="BeginContinuation"/>, a continuation engine's events are rewritten into the client's stream: its
/// role chunk is dropped, <c>id</c>, <c>created</c> and <c>model</c> become the first engine's, and usage counts the
/// prompt once and every completion token (see <see cref="Usage"/>).
/// </para>
/// <para>
/// Tokens delivered: <c>usage.completion_tokens</c> when the stream carries usage on every chunk
/// (<c>continuous_usage_stats</c>); otherwise one per chunk with text, which is vLLM's streaming without speculative
/// decoding (one decode step, one token, one chunk; a chunk that releases text held back for a stop string may hold
/// more, so a continuation may then run a few tokens past the client's limit).
/// </para>
/// </summary>
public sealed class SseFollower
{
    private static readonly JsonSerializerOptions Output = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private readonly ArrayBufferWriter<byte> _partial = new();
    private readonly StringBuilder _delivered = new();
    private bool _rewriting;
    private bool _roleDropped;
    private int _baseTokens;
    private int? _continuationPromptTokens;

    public string? Id { get; private set; }

    public JsonNode? Created { get; private set; }

    public string? Model { get; private set; }

    /// <summary>The answer's text as the client has it (content or text of every event passed on).</summary>
    public string DeliveredText => _delivered.ToString();

    public int DeliveredLength => _delivered.Length;

    /// <summary>Completion tokens the client has received.</summary>
    public int DeliveredTokens { get; private set; }

    /// <summary>The original request's prompt tokens, when its stream reported usage before it failed.</summary>
    public int? PromptTokens { get; private set; }

    public string? FinishReason { get; private set; }

    public bool UsageSeen { get; private set; }

    public bool Done { get; private set; }

    /// <summary>An error frame the engine sent (held back from the client); null when none came.</summary>
    public string? EngineError { get; private set; }

    public void ClearEngineError() => EngineError = null;

    /// <summary>Why what was delivered cannot be continued (a tool call or reasoning under way); null if it can.</summary>
    public string? NotContinuable { get; private set; }

    /// <summary>Events passed on from the current continuation (0 until its first, e.g. its role chunk, which is dropped).</summary>
    public int ContinuationEvents { get; private set; }

    /// <summary>Bytes of an event not yet complete (held back from the client).</summary>
    public int PendingBytes => _partial.WrittenCount;

    /// <summary>Takes <paramref name="bytes"/> from the engine and writes every event they complete to <paramref name="output"/>.</summary>
    public void Feed(ReadOnlySpan<byte> bytes, IBufferWriter<byte> output)
    {
        if (_partial.WrittenCount == 0)
        {
            var consumed = Split(bytes, output);
            if (consumed < bytes.Length)
            {
                _partial.Write(bytes[consumed..]);
            }
            return;
        }
        _partial.Write(bytes);
        var held = _partial.WrittenSpan.ToArray();
        _partial.Clear();
        var used = Split(held, output);
        if (used < held.Length)
        {
            _partial.Write(held.AsSpan(used));
        }
    }

    /// <summary>An event cut off by the engine's end is dropped: it never reaches the client.</summary>
    public void DiscardPartial() => _partial.Clear();

    /// <summary>From now on the events are a continuation's: rewritten into the original stream.</summary>
    public void BeginContinuation()
    {
        _partial.Clear();
        _rewriting = true;
        _roleDropped = false;
        _baseTokens = DeliveredTokens;
        _continuationPromptTokens = null;
        ContinuationEvents = 0;
    }

    private int Split(ReadOnlySpan<byte> bytes, IBufferWriter<byte> output)
    {
        var start = 0;
        while (start < bytes.Length)
        {
            var rest = bytes[start..];
            // An event ends at a blank line: "\n\n" (vLLM's) or "\r\n\r\n".
            var end = -1;
            for (var from = 0; from < rest.Length;)
            {
                var lf = rest[from..].IndexOf((byte)'\n');
                if (lf < 0)
                {
                    break;
                }
                var at = from + lf + 1;
                if (at < rest.Length && rest[at] == '\n')
                {
                    end = at + 1;
                    break;
                }
                if (at + 1 < rest.Length && rest[at] == '\r' && rest[at + 1] == '\n')
                {
                    end = at + 2;
                    break;
                }
                from = at;
            }
            if (end < 0)
            {
                break;
            }
            Event(rest[..end], output);
            start += end;
        }
        return start;
    }

    private void Event(ReadOnlySpan<byte> sse, IBufferWriter<byte> output)
    {
        var data = Data(sse);
        if (data.IsEmpty)
        {
            // A comment (": keep-alive") or an empty event: nothing to follow.
            output.Write(sse);
            return;
        }
        if (data.SequenceEqual("[DONE]"u8))
        {
            if (EngineError is not null)
            {
                // The end of a stream whose engine reported an error: the error is migrated, not relayed.
                return;
            }
            Done = true;
            output.Write(sse);
            return;
        }
        // id, created and model are read from the first engine's first chunk only.
        var chunk = Read(data, wantHeader: !_rewriting && Id is null);
        if (chunk.Error)
        {
            // vLLM reports an engine failure under a stream in-band (EngineDeadError: an error frame, then [DONE]); it is
            // held back, for the stream to be continued elsewhere.
            EngineError = Encoding.UTF8.GetString(data);
            return;
        }
        if (!_rewriting)
        {
            Id ??= chunk.Id;
            Model ??= chunk.Model;
            if (Created is null && chunk.Created is { } created)
            {
                Created = JsonValue.Create(created);
            }
            if (chunk.PromptTokens is { } prompt)
            {
                PromptTokens = prompt;
            }
            Observe(chunk, chunk.CompletionTokens);
            output.Write(sse);
            return;
        }
        if (!_roleDropped && chunk.Role && string.IsNullOrEmpty(chunk.Text) && chunk.FinishReason is null)
        {
            // The continuation's own opening: the client had its role chunk from the first engine.
            _roleDropped = true;
            return;
        }
        _roleDropped = true;
        if (chunk.PromptTokens is { } continuationPrompt)
        {
            _continuationPromptTokens = continuationPrompt;
        }
        Observe(chunk, chunk.CompletionTokens is { } c ? _baseTokens + c : null);
        ContinuationEvents++;
        Rewrite(data, output);
    }

    private void Observe(in Chunk chunk, int? completionTokens)
    {
        if (chunk.ToolCall)
        {
            NotContinuable ??= "tool call";
        }
        if (chunk.Reasoning)
        {
            NotContinuable ??= "reasoning";
        }
        if (!string.IsNullOrEmpty(chunk.Text))
        {
            _delivered.Append(chunk.Text);
            if (completionTokens is null)
            {
                DeliveredTokens++;
            }
        }
        if (completionTokens is { } tokens)
        {
            DeliveredTokens = tokens;
        }
        if (chunk.FinishReason is { } finish)
        {
            FinishReason = finish;
        }
        if (chunk.Usage)
        {
            UsageSeen = true;
        }
    }

    /// <summary>
    /// Usage of the migrated response: the prompt once — the original's when its stream said (continuous usage), else
    /// the continuation's less the delivered tokens it carries — and every completion token delivered.
    /// </summary>
    public (int Prompt, int Completion) Usage(int continuationPrompt, int continuationCompletion) =>
        (PromptTokens ?? Math.Max(0, continuationPrompt - _baseTokens), _baseTokens + continuationCompletion);

    private void Rewrite(ReadOnlySpan<byte> data, IBufferWriter<byte> output)
    {
        var node = JsonNode.Parse(data)!.AsObject();
        if (Id is not null)
        {
            node["id"] = Id;
        }
        if (Created is not null)
        {
            node["created"] = Created.DeepClone();
        }
        if (Model is not null)
        {
            node["model"] = Model;
        }
        if (node["usage"] is JsonObject usage && usage["completion_tokens"] is JsonValue completion)
        {
            var (prompt, total) = Usage(_continuationPromptTokens ?? usage["prompt_tokens"]?.GetValue<int>() ?? 0, completion.GetValue<int>());
            usage["prompt_tokens"] = prompt;
            usage["completion_tokens"] = total;
            usage["total_tokens"] = prompt + total;
        }
        output.Write("data: "u8);
        using (var writer = new Utf8JsonWriter(output, new JsonWriterOptions { Encoder = Output.Encoder }))
        {
            node.WriteTo(writer, Output);
        }
        output.Write("\n\n"u8);
    }

    /// <summary>The <c>data:</c> field of an event (its lines joined), trimmed; empty when it has none.</summary>
    private static ReadOnlySpan<byte> Data(ReadOnlySpan<byte> sse)
    {
        var rest = sse;
        while (!rest.IsEmpty)
        {
            var eol = rest.IndexOf((byte)'\n');
            var line = eol < 0 ? rest : rest[..eol];
            rest = eol < 0 ? [] : rest[(eol + 1)..];
            if (line.StartsWith("data:"u8))
            {
                // vLLM writes one data line per event; a multi-line event would need joining, which no engine sends.
                return line[5..].Trim(" \r"u8);
            }
        }
        return [];
    }

    private readonly record struct Chunk(
        string? Id, long? Created, string? Model, string? Text, bool Role, bool ToolCall, bool Reasoning, string? FinishReason,
        bool Usage, int? PromptTokens, int? CompletionTokens, bool Error);

    /// <summary>One pass over a chunk's JSON: the first choice's delta (or text), its finish reason, usage.</summary>
    private static Chunk Read(ReadOnlySpan<byte> json, bool wantHeader)
    {
        string? id = null, model = null, text = null, finish = null;
        long? created = null;
        bool role = false, tool = false, reasoning = false, usage = false, error = false;
        int? prompt = null, completion = null;
        var reader = new Utf8JsonReader(json);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return new Chunk(null, null, null, null, false, false, false, null, false, null, null, true);
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (!wantHeader && (reader.ValueTextEquals("id"u8) || reader.ValueTextEquals("created"u8) || reader.ValueTextEquals("model"u8)))
                {
                    reader.Read();
                }
                else if (reader.ValueTextEquals("id"u8))
                {
                    reader.Read();
                    id = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (reader.ValueTextEquals("created"u8))
                {
                    reader.Read();
                    created = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var c) ? c : null;
                }
                else if (reader.ValueTextEquals("model"u8))
                {
                    reader.Read();
                    model = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (reader.ValueTextEquals("error"u8))
                {
                    reader.Read();
                    error = reader.TokenType != JsonTokenType.Null;
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("usage"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        usage = true;
                        var depth = reader.CurrentDepth;
                        while (reader.Read() && reader.CurrentDepth > depth)
                        {
                            if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != depth + 1)
                            {
                                continue;
                            }
                            var isPrompt = reader.ValueTextEquals("prompt_tokens"u8);
                            var isCompletion = reader.ValueTextEquals("completion_tokens"u8);
                            reader.Read();
                            if (reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var value))
                            {
                                if (isPrompt)
                                {
                                    prompt = value;
                                }
                                else if (isCompletion)
                                {
                                    completion = value;
                                }
                            }
                            reader.Skip();
                        }
                    }
                }
                else if (reader.ValueTextEquals("choices"u8))
                {
                    reader.Read();
                    if (reader.TokenType != JsonTokenType.StartArray)
                    {
                        reader.Skip();
                        continue;
                    }
                    while (reader.Read() && reader.TokenType == JsonTokenType.StartObject)
                    {
                        var choiceDepth = reader.CurrentDepth;
                        while (reader.Read() && reader.CurrentDepth > choiceDepth)
                        {
                            if (reader.TokenType != JsonTokenType.PropertyName)
                            {
                                continue;
                            }
                            if (reader.ValueTextEquals("text"u8))
                            {
                                reader.Read();
                                text = reader.TokenType == JsonTokenType.String ? text + reader.GetString() : text;
                            }
                            else if (reader.ValueTextEquals("finish_reason"u8))
                            {
                                reader.Read();
                                finish = reader.TokenType == JsonTokenType.String ? reader.GetString() : finish;
                            }
                            else if (reader.ValueTextEquals("delta"u8) || reader.ValueTextEquals("message"u8))
                            {
                                reader.Read();
                                if (reader.TokenType != JsonTokenType.StartObject)
                                {
                                    reader.Skip();
                                    continue;
                                }
                                var deltaDepth = reader.CurrentDepth;
                                while (reader.Read() && reader.CurrentDepth > deltaDepth)
                                {
                                    if (reader.TokenType != JsonTokenType.PropertyName)
                                    {
                                        continue;
                                    }
                                    var isContent = reader.ValueTextEquals("content"u8);
                                    var isRole = reader.ValueTextEquals("role"u8);
                                    var isTool = reader.ValueTextEquals("tool_calls"u8) || reader.ValueTextEquals("function_call"u8);
                                    var isReasoning = reader.ValueTextEquals("reasoning_content"u8) || reader.ValueTextEquals("reasoning"u8);
                                    reader.Read();
                                    if (isContent && reader.TokenType == JsonTokenType.String)
                                    {
                                        text += reader.GetString();
                                    }
                                    else if (isRole && reader.TokenType == JsonTokenType.String)
                                    {
                                        role = true;
                                    }
                                    else if (isTool && reader.TokenType is JsonTokenType.StartArray or JsonTokenType.StartObject)
                                    {
                                        tool = true;
                                    }
                                    else if (isReasoning && reader.TokenType == JsonTokenType.String && reader.ValueSpan.Length > 0)
                                    {
                                        reasoning = true;
                                    }
                                    reader.Skip();
                                }
                            }
                            else
                            {
                                reader.Read();
                                reader.Skip();
                            }
                        }
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }
        }
        catch (JsonException)
        {
            error = true;
        }
        return new Chunk(id, created, model, text, role, tool, reasoning, finish, usage, prompt, completion, error);
    }
}
