using System.Diagnostics;
using VllmStack.Bench.MultiRound;

namespace VllmStack.Tests.Bench;

public sealed class ChatStreamTests
{
    private static readonly ChatTurn Turn = new("user-5", 2, []);

    private static long Ms(double ms) => (long)(ms * Stopwatch.Frequency / 1000);

    private static string Chunk(string content, string? role = null) =>
        $$"""{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{{{(role is null ? "" : $"\"role\":\"{role}\",")}}"content":"{{content}}"},"finish_reason":null}],"usage":null}""";

    private const string Usage = """{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":812,"completion_tokens":3,"total_tokens":815,"prompt_tokens_details":{"cached_tokens":640}}}""";

    /// <summary>Feeds events to a state as if they arrived at the given milliseconds after sending at 0.</summary>
    private static ChatStreamState Feed(params (string Data, double AtMs)[] events)
    {
        var state = new ChatStreamState(Ms(0));
        foreach (var (data, at) in events)
        {
            state.Accept(data, Ms(at));
        }
        return state;
    }

    [Fact]
    public void Measures_first_token_gaps_usage_and_the_answer()
    {
        var state = Feed((Chunk("", "assistant"), 5), (Chunk("Hello"), 20), (Chunk(" there"), 23), (Chunk("!"), 30), (Usage, 31), ("[DONE]", 31));
        var record = state.Finish(Turn, DateTimeOffset.UnixEpoch, 200, Ms(32));

        Assert.True(record.Succeeded);
        Assert.Equal(20, record.TtftMs!.Value, 3);                 // the role-only chunk carries no token
        Assert.Equal([3, 7], record.InterTokenMs.Select(x => Math.Round(x, 3)));
        Assert.Equal(32, record.E2eMs, 3);
        Assert.Equal((812, 3, 640), (record.PromptTokens!.Value, record.CompletionTokens!.Value, record.CachedPromptTokens!.Value));
        Assert.Equal(3, record.ContentChunks);
        Assert.Equal("Hello there!", state.Answer);
        Assert.Equal(("user-5", 2), (record.UserId, record.Round));
    }

    [Fact]
    public void An_error_frame_fails_the_request_with_its_message()
    {
        var state = Feed((Chunk("Hi"), 1), ("""{"error":{"message":"engine crashed","type":"InternalServerError","code":500}}""", 2), ("[DONE]", 3));
        var record = state.Finish(Turn, DateTimeOffset.UnixEpoch, 200, Ms(3));
        Assert.Equal(RequestErrorKind.ErrorFrame, record.ErrorKind);
        Assert.Equal("engine crashed", record.Error);
    }

    [Fact]
    public void A_stream_without_done_is_broken()
    {
        var record = Feed((Chunk("Hi"), 1), (Chunk(" you"), 2)).Finish(Turn, DateTimeOffset.UnixEpoch, 200, Ms(3));
        Assert.Equal(RequestErrorKind.BrokenStream, record.ErrorKind);
        Assert.False(record.Succeeded);
    }

    [Fact]
    public void A_chunk_that_is_not_json_breaks_the_stream() =>
        Assert.Equal(RequestErrorKind.BrokenStream, Feed(("{not json", 1), ("[DONE]", 2)).Finish(Turn, DateTimeOffset.UnixEpoch, 200, Ms(2)).ErrorKind);

    [Fact]
    public void A_completed_stream_without_content_fails() =>
        Assert.Equal(RequestErrorKind.NoContent, Feed((Chunk("", "assistant"), 1), (Usage, 2), ("[DONE]", 2)).Finish(Turn, DateTimeOffset.UnixEpoch, 200, Ms(2)).ErrorKind);

    [Fact]
    public async Task Sse_events_are_data_lines_up_to_a_blank_line()
    {
        const string wire = ": keep-alive comment\n\ndata: {\"a\":1}\n\nevent: message\ndata:{\"b\":\ndata: 2}\r\n\r\ndata: [DONE]\n\n";
        var events = new List<string>();
        await foreach (var data in SseReader.ReadEventsAsync(new StringReader(wire), CancellationToken.None))
        {
            events.Add(data);
        }
        Assert.Equal(["{\"a\":1}", "{\"b\":\n2}", "[DONE]"], events);
    }

    [Fact]
    public void Endpoint_urls_accept_a_base_with_or_without_v1()
    {
        static ChatEndpoint At(string url) => new(new Uri(url), "m", null, "x-user-id", 10, TimeSpan.FromSeconds(1));
        Assert.Equal("http://127.0.0.1:8080/v1/chat/completions", At("http://127.0.0.1:8080").ChatCompletionsUrl.ToString());
        Assert.Equal("http://127.0.0.1:8080/v1/chat/completions", At("http://127.0.0.1:8080/v1/").ChatCompletionsUrl.ToString());
        Assert.Equal("http://h/proxy/v1/models", At("http://h/proxy").ModelsUrl.ToString());
    }
}
