using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace VllmStack.Bench.MultiRound;

/// <summary>
/// What one streamed chat completion has shown so far, fed event by event with the time each arrived (a
/// <see cref="Stopwatch"/> timestamp), so that it can be tested without a server or a clock.
/// </summary>
public sealed class ChatStreamState(long sentAt)
{
    private readonly StringBuilder _answer = new();
    private readonly List<double> _interTokenMs = [];
    private long _lastContentAt;

    public bool Done { get; private set; }

    public RequestErrorKind ErrorKind { get; private set; }

    public string? Error { get; private set; }

    public double? TtftMs { get; private set; }

    public IReadOnlyList<double> InterTokenMs => _interTokenMs;

    public int ContentChunks { get; private set; }

    public int? PromptTokens { get; private set; }

    public int? CompletionTokens { get; private set; }

    public int? CachedPromptTokens { get; private set; }

    public string Answer => _answer.ToString();

    public static double Milliseconds(long from, long to) => (to - from) * 1000.0 / Stopwatch.Frequency;

    /// <summary>One server-sent event's data: a JSON chunk, or <c>[DONE]</c>.</summary>
    public void Accept(string data, long timestamp)
    {
        if (data == "[DONE]")
        {
            Done = true;
            return;
        }
        try
        {
            using var json = JsonDocument.Parse(data);
            var root = json.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                Fail(RequestErrorKind.BrokenStream, "a stream chunk is not a JSON object");
                return;
            }
            if (root.TryGetProperty("error", out var error) && error.ValueKind != JsonValueKind.Null)
            {
                Fail(RequestErrorKind.ErrorFrame, ErrorMessage(error));
                return;
            }
            if (root.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array)
            {
                foreach (var choice in choices.EnumerateArray())
                {
                    if (choice.TryGetProperty("delta", out var delta) && delta.ValueKind == JsonValueKind.Object &&
                        delta.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String &&
                        content.GetString() is { Length: > 0 } text)
                    {
                        OnContent(text, timestamp);
                    }
                }
            }
            if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                PromptTokens = IntOrNull(usage, "prompt_tokens");
                CompletionTokens = IntOrNull(usage, "completion_tokens");
                CachedPromptTokens = usage.TryGetProperty("prompt_tokens_details", out var details) && details.ValueKind == JsonValueKind.Object
                    ? IntOrNull(details, "cached_tokens")
                    : null;
            }
        }
        catch (JsonException e)
        {
            Fail(RequestErrorKind.BrokenStream, "a stream chunk is not JSON: " + e.Message);
        }
    }

    /// <summary>The stream has ended (or broken off): settles the outcome and returns the record.</summary>
    public RequestRecord Finish(ChatTurn turn, DateTimeOffset startedAt, int? httpStatus, long endedAt)
    {
        if (ErrorKind == RequestErrorKind.None && !Done)
        {
            Fail(RequestErrorKind.BrokenStream, "the stream ended before [DONE]");
        }
        if (ErrorKind == RequestErrorKind.None && ContentChunks == 0)
        {
            Fail(RequestErrorKind.NoContent, "the stream carried no content");
        }
        return new RequestRecord(turn.UserId, turn.Round, startedAt, ErrorKind, Error, httpStatus, TtftMs,
            Milliseconds(sentAt, endedAt), ContentChunks, PromptTokens, CompletionTokens, CachedPromptTokens, [.. _interTokenMs]);
    }

    /// <summary>Records a failure; the first one is kept, since later ones are usually its consequences.</summary>
    public void Fail(RequestErrorKind kind, string message)
    {
        if (ErrorKind == RequestErrorKind.None)
        {
            ErrorKind = kind;
            Error = message;
        }
    }

    private void OnContent(string text, long timestamp)
    {
        if (ContentChunks == 0)
        {
            TtftMs = Milliseconds(sentAt, timestamp);
        }
        else
        {
            _interTokenMs.Add(Milliseconds(_lastContentAt, timestamp));
        }
        _lastContentAt = timestamp;
        ContentChunks++;
        _answer.Append(text);
    }

    private static int? IntOrNull(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) ? n : null;

    /// <summary>The message of an OpenAI error object (<c>{"message": …}</c>), or the raw JSON if it has none.</summary>
    internal static string ErrorMessage(JsonElement error) =>
        error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.String
            ? message.GetString()!
            : error.ValueKind == JsonValueKind.String ? error.GetString()! : error.GetRawText();
}
