using System.Text.Json;

namespace VllmStack.EngineSim.Api;

/// <summary>
/// The JSON shapes of OpenAI's chat and completion responses and stream chunks, field for field as vLLM 0.11 writes
/// them: whole responses with every field (pydantic's <c>model_dump()</c>, nulls included), chat chunks with only the
/// fields vLLM sets (<c>exclude_unset</c>), completion chunks with all of theirs, usage chunks without nulls.
/// </summary>
internal static class OpenAiWriter
{
    public static void WriteHeader(Utf8JsonWriter w, string id, string obj, long created, string model)
    {
        w.WriteString("id", id);
        w.WriteString("object", obj);
        w.WriteNumber("created", created);
        w.WriteString("model", model);
    }

    public static void WriteStopReason(Utf8JsonWriter w, object? stopReason)
    {
        switch (stopReason)
        {
            case string s:
                w.WriteString("stop_reason", s);
                break;
            case int i:
                w.WriteNumber("stop_reason", i);
                break;
            default:
                w.WriteNull("stop_reason");
                break;
        }
    }

    public static void WriteFinishReason(Utf8JsonWriter w, string? finishReason)
    {
        if (finishReason is null)
        {
            w.WriteNull("finish_reason");
        }
        else
        {
            w.WriteString("finish_reason", finishReason);
        }
    }

    /// <summary>
    /// vLLM's <c>UsageInfo</c>. <paramref name="cachedTokens"/> only when <c>--enable-prompt-tokens-details</c> and some were
    /// cached; otherwise <c>prompt_tokens_details</c> is null, or left out when <paramref name="omitNulls"/>.
    /// </summary>
    public static void WriteUsage(Utf8JsonWriter w, int promptTokens, int completionTokens, int? cachedTokens, bool omitNulls = false)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", promptTokens);
        w.WriteNumber("total_tokens", promptTokens + completionTokens);
        w.WriteNumber("completion_tokens", completionTokens);
        if (cachedTokens is > 0)
        {
            w.WriteStartObject("prompt_tokens_details");
            w.WriteNumber("cached_tokens", cachedTokens.Value);
            w.WriteEndObject();
        }
        else if (!omitNulls)
        {
            w.WriteNull("prompt_tokens_details");
        }
        w.WriteEndObject();
    }

    /// <summary>
    /// Usage as a continuous-usage chunk carries it: the three counts only (vLLM sets no details there). Chat chunks
    /// carry it only when set; completion chunks always have the field, null unless set.
    /// </summary>
    private static void WriteChunkUsage(Utf8JsonWriter w, StreamContext s, int promptTokens, int completionTokens, bool completion)
    {
        if (s.IncludeContinuousUsage)
        {
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", promptTokens);
            w.WriteNumber("total_tokens", promptTokens + completionTokens);
            w.WriteNumber("completion_tokens", completionTokens);
            if (completion)
            {
                w.WriteNull("prompt_tokens_details");
            }
            w.WriteEndObject();
        }
        else if (completion)
        {
            w.WriteNull("usage");
        }
    }

    /// <summary>A chat stream's first chunk for a choice: only the role, before any content (vLLM's first iteration).</summary>
    public static void WriteChatRoleChunk(Utf8JsonWriter w, StreamContext s, int choice, string role, int promptTokens)
    {
        StartChunk(w, s, "chat.completion.chunk", choice);
        w.WriteStartObject("delta");
        w.WriteString("role", role);
        w.WriteString("content", "");
        w.WriteEndObject();
        w.WriteNull("logprobs");
        w.WriteNull("finish_reason");
        EndChoices(w);
        WriteChunkUsage(w, s, promptTokens, 0, completion: false);
        w.WriteEndObject();
    }

    /// <summary>One chat stream chunk for one choice: new content; the last one also says why the choice ended.</summary>
    public static void WriteChatChunk(Utf8JsonWriter w, StreamContext s, int choice, string content, LogprobsWriter? logprobs,
        string? finishReason, object? stopReason, int promptTokens, int completionTokens)
    {
        StartChunk(w, s, "chat.completion.chunk", choice);
        w.WriteStartObject("delta");
        w.WriteString("content", content);
        w.WriteEndObject();
        WriteLogprobs(w, logprobs);
        WriteFinishReason(w, finishReason);
        if (finishReason is not null)
        {
            WriteStopReason(w, stopReason);
        }
        EndChoices(w);
        WriteChunkUsage(w, s, promptTokens, completionTokens, completion: false);
        w.WriteEndObject();
    }

    public static void WriteCompletionChunk(Utf8JsonWriter w, StreamContext s, int choice, string text, LogprobsWriter? logprobs,
        string? finishReason, object? stopReason, int promptTokens, int completionTokens)
    {
        StartChunk(w, s, "text_completion", choice);
        w.WriteString("text", text);
        WriteLogprobs(w, logprobs);
        WriteFinishReason(w, finishReason);
        WriteStopReason(w, stopReason);
        EndChoices(w);
        WriteChunkUsage(w, s, promptTokens, completionTokens, completion: true);
        w.WriteEndObject();
    }

    /// <summary>The final chunk of <c>include_usage</c>: no choices, only usage, nulls left out (vLLM's <c>exclude_none</c>).</summary>
    public static void WriteUsageChunk(Utf8JsonWriter w, StreamContext s, string obj, int promptTokens, int completionTokens, int? cachedTokens)
    {
        w.WriteStartObject();
        WriteHeader(w, s.Id, obj, s.Created, s.Model);
        w.WriteStartArray("choices");
        w.WriteEndArray();
        WriteUsage(w, promptTokens, completionTokens, cachedTokens, omitNulls: true);
        w.WriteEndObject();
    }

    /// <summary>A non-streaming chat answer's message, with every field of vLLM's <c>ChatMessage</c>.</summary>
    public static void WriteChatMessage(Utf8JsonWriter w, string role, string content)
    {
        w.WriteStartObject("message");
        w.WriteString("role", role);
        w.WriteString("content", content);
        w.WriteNull("refusal");
        w.WriteNull("annotations");
        w.WriteNull("audio");
        w.WriteNull("function_call");
        w.WriteStartArray("tool_calls");
        w.WriteEndArray();
        w.WriteNull("reasoning_content");
        w.WriteEndObject();
    }

    /// <summary>The fields after <c>choices</c> that vLLM's whole responses always carry.</summary>
    /// <param name="promptLogprobs">Writes chat's top-level <c>prompt_logprobs</c> when asked for; null otherwise.</param>
    public static void WriteResponseTail(Utf8JsonWriter w, bool chat, int promptTokens, int completionTokens, int? cachedTokens, Action<Utf8JsonWriter>? promptLogprobs)
    {
        w.WriteNull("service_tier");
        w.WriteNull("system_fingerprint");
        WriteUsage(w, promptTokens, completionTokens, cachedTokens);
        if (chat)
        {
            if (promptLogprobs is null)
            {
                w.WriteNull("prompt_logprobs");
            }
            else
            {
                promptLogprobs(w);
            }
        }
        w.WriteNull("kv_transfer_params");
    }

    public static void WriteLogprobs(Utf8JsonWriter w, LogprobsWriter? logprobs)
    {
        if (logprobs is null)
        {
            w.WriteNull("logprobs");
        }
        else
        {
            w.WritePropertyName("logprobs");
            logprobs.Write(w);
        }
    }

    /// <summary>Opens a chunk with its one choice: the caller writes the choice's fields and closes it.</summary>
    private static void StartChunk(Utf8JsonWriter w, StreamContext s, string obj, int choice)
    {
        w.WriteStartObject();
        WriteHeader(w, s.Id, obj, s.Created, s.Model);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", choice);
    }

    private static void EndChoices(Utf8JsonWriter w)
    {
        w.WriteEndObject();
        w.WriteEndArray();
    }
}

/// <summary>What every chunk of one streamed response repeats.</summary>
internal sealed record StreamContext(string Id, long Created, string Model, bool IncludeContinuousUsage);
