using System.Text.Json;

namespace VllmStack.EngineSim.Api;

/// <summary>The JSON shapes of OpenAI's chat and completion responses and stream chunks, as vLLM fills them.</summary>
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

    public static void WriteUsage(Utf8JsonWriter w, int promptTokens, int completionTokens, int? cachedTokens)
    {
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", promptTokens);
        w.WriteNumber("total_tokens", promptTokens + completionTokens);
        w.WriteNumber("completion_tokens", completionTokens);
        if (cachedTokens is { } cached)
        {
            w.WriteStartObject("prompt_tokens_details");
            w.WriteNumber("cached_tokens", cached);
            w.WriteEndObject();
        }
        else
        {
            w.WriteNull("prompt_tokens_details");
        }
        w.WriteEndObject();
    }

    /// <summary>One chat stream chunk for one choice; <paramref name="role"/> only on a choice's first chunk.</summary>
    public static void WriteChatChunk(Utf8JsonWriter w, StreamContext s, int choice, string? role, string content, string? finishReason, object? stopReason)
    {
        StartChunk(w, s, "chat.completion.chunk", choice);
        w.WriteStartObject("delta");
        if (role is not null)
        {
            w.WriteString("role", role);
        }
        w.WriteString("content", content);
        w.WriteEndObject();
        w.WriteNull("logprobs");
        WriteFinishReason(w, finishReason);
        if (finishReason is not null)
        {
            WriteStopReason(w, stopReason);
        }
        EndChunk(w, s);
    }

    public static void WriteCompletionChunk(Utf8JsonWriter w, StreamContext s, int choice, string text, string? finishReason, object? stopReason)
    {
        StartChunk(w, s, "text_completion", choice);
        w.WriteString("text", text);
        w.WriteNull("logprobs");
        WriteFinishReason(w, finishReason);
        WriteStopReason(w, stopReason);
        EndChunk(w, s);
    }

    /// <summary>Opens a chunk with its one choice: the caller writes the choice's fields, <see cref="EndChunk"/> closes it.</summary>
    private static void StartChunk(Utf8JsonWriter w, StreamContext s, string obj, int choice)
    {
        w.WriteStartObject();
        WriteHeader(w, s.Id, obj, s.Created, s.Model);
        w.WriteStartArray("choices");
        w.WriteStartObject();
        w.WriteNumber("index", choice);
    }

    private static void EndChunk(Utf8JsonWriter w, StreamContext s)
    {
        w.WriteEndObject();
        w.WriteEndArray();
        if (s.IncludeUsage)
        {
            w.WriteNull("usage");
        }
        w.WriteEndObject();
    }

    /// <summary>The final chunk of <c>stream_options.include_usage</c>: no choices, only usage.</summary>
    public static void WriteUsageChunk(Utf8JsonWriter w, StreamContext s, string obj, int promptTokens, int completionTokens, int? cachedTokens)
    {
        w.WriteStartObject();
        WriteHeader(w, s.Id, obj, s.Created, s.Model);
        w.WriteStartArray("choices");
        w.WriteEndArray();
        WriteUsage(w, promptTokens, completionTokens, cachedTokens);
        w.WriteEndObject();
    }
}

/// <summary>What every chunk of one streamed response repeats.</summary>
internal sealed record StreamContext(string Id, long Created, string Model, bool IncludeUsage);
