using System.Buffers;
using System.Text;
using System.Text.Json.Nodes;
using VllmStack.Router.Forwarding.Migration;

namespace VllmStack.Tests.Router;

/// <summary>The SSE follower and the continuation builder, as pure logic.</summary>
public sealed class StreamMigrationUnitTests
{
    private static string Chunk(string content, string? finish = null, string id = "chatcmpl-a", long created = 100, string? usage = null) =>
        $"data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{JsonValue.Create(content).ToJsonString()}}},\"logprobs\":null,\"finish_reason\":{(finish is null ? "null" : $"\"{finish}\"")}}}]{(usage is null ? "" : $",\"usage\":{usage}")}}}\n\n";

    private static string Role(string id = "chatcmpl-a", long created = 100) =>
        $"data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n";

    private static string Feed(SseFollower follower, string sse, int pieceSize = int.MaxValue)
    {
        var output = new ArrayBufferWriter<byte>();
        var bytes = Encoding.UTF8.GetBytes(sse);
        for (var i = 0; i < bytes.Length; i += pieceSize)
        {
            follower.Feed(bytes.AsSpan(i, Math.Min(pieceSize, bytes.Length - i)), output);
        }
        return Encoding.UTF8.GetString(output.WrittenSpan);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(100_000)]
    public void Passes_whole_events_unchanged_and_learns_what_was_delivered(int pieceSize)
    {
        var follower = new SseFollower();
        var stream = Role() + Chunk("Hello") + Chunk(" wor") + Chunk("ld") + ": keep-alive\n\n" + "data: {\"id\":\"chatcmpl-a\",\"cho";
        var passed = Feed(follower, stream, pieceSize);

        Assert.Equal(stream[..stream.LastIndexOf("data: {\"id\":\"chatcmpl-a\",\"cho", StringComparison.Ordinal)], passed);
        Assert.Equal("Hello world", follower.DeliveredText);
        Assert.Equal(3, follower.DeliveredTokens);
        Assert.Equal(("chatcmpl-a", "m"), (follower.Id, follower.Model));
        Assert.Null(follower.FinishReason);
        Assert.True(follower.PendingBytes > 0);
        Assert.False(follower.Done);
    }

    [Fact]
    public void Counts_tokens_from_continuous_usage_when_the_stream_has_it()
    {
        var follower = new SseFollower();
        Feed(follower, Chunk("Hello", usage: "{\"prompt_tokens\":12,\"completion_tokens\":1,\"total_tokens\":13}")
            + Chunk(" there, friend", usage: "{\"prompt_tokens\":12,\"completion_tokens\":4,\"total_tokens\":16}"));
        Assert.Equal(4, follower.DeliveredTokens);
        Assert.Equal(12, follower.PromptTokens);
    }

    [Fact]
    public void Rewrites_a_continuation_into_the_original_stream()
    {
        var follower = new SseFollower();
        Feed(follower, Role() + Chunk("One") + Chunk(" two"));
        follower.BeginContinuation();
        var passed = Feed(follower, Role("chatcmpl-b", 222) + Chunk(" three", id: "chatcmpl-b", created: 222) + Chunk(" four.", "length", "chatcmpl-b", 222)
            + "data: {\"id\":\"chatcmpl-b\",\"object\":\"chat.completion.chunk\",\"created\":222,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"total_tokens\":32,\"completion_tokens\":2}}\n\n"
            + "data: [DONE]\n\n");

        var events = passed.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, events.Length);
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e["data: ".Length..])!).ToList();
        Assert.All(chunks, c => Assert.Equal(("chatcmpl-a", 100L, "m"), (c["id"]!.GetValue<string>(), c["created"]!.GetValue<long>(), c["model"]!.GetValue<string>())));
        Assert.Equal(" three", chunks[0]["choices"]![0]!["delta"]!["content"]!.GetValue<string>());
        Assert.Equal("length", chunks[1]["choices"]![0]!["finish_reason"]!.GetValue<string>());
        // Prompt once (the continuation's less the 2 delivered tokens it carries), every completion token.
        var usage = chunks[2]["usage"]!;
        Assert.Equal((28, 4, 32), (usage["prompt_tokens"]!.GetValue<int>(), usage["completion_tokens"]!.GetValue<int>(), usage["total_tokens"]!.GetValue<int>()));
        Assert.Equal("One two three four.", follower.DeliveredText);
        Assert.True(follower.Done);
    }

    [Fact]
    public void Holds_back_an_engine_error_frame_and_its_done()
    {
        var follower = new SseFollower();
        var passed = Feed(follower, Chunk("Hi") + "data: {\"error\":{\"message\":\"EngineCore encountered an issue.\",\"type\":\"BadRequestError\",\"code\":400}}\n\ndata: [DONE]\n\n");
        Assert.Equal(Chunk("Hi"), passed);
        Assert.NotNull(follower.EngineError);
        Assert.False(follower.Done);
    }

    [Fact]
    public void A_tool_call_under_way_is_not_continuable()
    {
        var follower = new SseFollower();
        Feed(follower, "data: {\"id\":\"x\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\"}}]},\"finish_reason\":null}]}\n\n");
        Assert.Equal("tool call", follower.NotContinuable);
    }

    [Fact]
    public void A_chat_continues_as_a_final_assistant_message_with_its_limits_reduced()
    {
        var original = """{"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true,"max_completion_tokens":100,"max_tokens":90,"min_tokens":5,"seed":3}"""u8;
        var body = JsonNode.Parse(ContinuationBuilder.Build(original, GenerationRoute.Chat, "Hello thé", 7))!;
        Assert.Equal("""[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello thé"}]""", body["messages"]!.ToJsonString(new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        Assert.True(body["continue_final_message"]!.GetValue<bool>());
        Assert.False(body["add_generation_prompt"]!.GetValue<bool>());
        Assert.Equal((93, 83, 0, 3), (body["max_completion_tokens"]!.GetValue<int>(), body["max_tokens"]!.GetValue<int>(), body["min_tokens"]!.GetValue<int>(), body["seed"]!.GetValue<int>()));

        Assert.Null(ContinuationBuilder.Build(original, GenerationRoute.Chat, "x", 90));
        Assert.Equal(original.ToArray(), ContinuationBuilder.Build(original, GenerationRoute.Chat, "", 0));
    }

    [Fact]
    public void A_prefilled_answer_goes_on_in_its_own_message()
    {
        var original = """{"model":"m","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Sure:"}],"continue_final_message":true,"add_generation_prompt":false,"stream":true}"""u8;
        var body = JsonNode.Parse(ContinuationBuilder.Build(original, GenerationRoute.Chat, " one two", 2))!;
        Assert.Equal(2, body["messages"]!.AsArray().Count);
        Assert.Equal("Sure: one two", body["messages"]![1]!["content"]!.GetValue<string>());
    }

    [Fact]
    public void A_prefilled_answer_given_as_content_parts_goes_on_in_its_last_text_part()
    {
        var original = """{"model":"m","messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":[{"type":"text","text":"Once"},{"type":"text","text":"upon"}]}],"continue_final_message":true,"add_generation_prompt":false,"stream":true}"""u8;
        var body = JsonNode.Parse(ContinuationBuilder.Build(original, GenerationRoute.Chat, " a time", 2))!;
        var messages = body["messages"]!.AsArray();
        Assert.Equal(2, messages.Count);
        Assert.Equal("""[{"type":"text","text":"Once"},{"type":"text","text":"upon a time"}]""", messages[1]!["content"]!.ToJsonString());
    }

    [Fact]
    public void A_completion_continues_after_its_prompt_with_vllms_default_limit()
    {
        var body = JsonNode.Parse(ContinuationBuilder.Build("""{"model":"m","prompt":["Once upon"],"stream":true}"""u8, GenerationRoute.Completions, " a time", 2))!;
        Assert.Equal("Once upon a time", body["prompt"]!.GetValue<string>());
        Assert.Equal(14, body["max_tokens"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("""{"model":"m","messages":[],"stream":true}""", true, null, false)]
    [InlineData("""{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}""", true, null, true)]
    [InlineData("""{"model":"m","messages":[],"stream":true,"stream_options":{"include_usage":false}}""", true, null, false)]
    [InlineData("""{"model":"m","messages":[],"stream":false}""", false, null, false)]
    [InlineData("""{"model":"m","messages":[],"stream":true,"n":2}""", true, "n > 1", false)]
    [InlineData("""{"model":"m","messages":[],"stream":true,"logprobs":true,"top_logprobs":2}""", true, "logprobs", false)]
    [InlineData("""{"model":"m","messages":[],"stream":true,"logprobs":false,"response_format":{"type":"text"}}""", true, null, false)]
    [InlineData("""{"model":"m","messages":[],"stream":true,"response_format":{"type":"json_object"}}""", true, "structured output", false)]
    [InlineData("""{"model":"m","messages":[],"stream":true,"guided_regex":"a+"}""", true, "structured output", false)]
    [InlineData("""{"model":"m","messages":[],"stream":true,"echo":true}""", true, "echo", false)]
    public void Assesses_which_chats_can_be_continued(string body, bool streaming, string? notContinuable, bool includeUsage)
    {
        var assessment = ContinuationBuilder.Assess(Encoding.UTF8.GetBytes(body), GenerationRoute.Chat);
        Assert.Equal((streaming, notContinuable, includeUsage), (assessment.Streaming, assessment.NotContinuable, assessment.IncludeUsage));
    }

    [Theory]
    [InlineData("""{"model":"m","prompt":"a","stream":true}""", null)]
    [InlineData("""{"model":"m","prompt":["a"],"stream":true}""", null)]
    [InlineData("""{"model":"m","prompt":["a","b"],"stream":true}""", "prompt is not one string")]
    [InlineData("""{"model":"m","prompt":[1,2,3],"stream":true}""", "prompt is not one string")]
    [InlineData("""{"model":"m","prompt":"a","stream":true,"logprobs":0}""", "logprobs")]
    [InlineData("""{"model":"m","prompt":"a","stream":true,"logprobs":null}""", null)]
    public void Assesses_which_completions_can_be_continued(string body, string? notContinuable) =>
        Assert.Equal(notContinuable, ContinuationBuilder.Assess(Encoding.UTF8.GetBytes(body), GenerationRoute.Completions).NotContinuable);

    [Fact]
    public void Max_migrations_is_validated_at_start_up_and_set_by_its_flag()
    {
        Assert.Empty(new VllmStack.Router.Configuration.RouterOptions().Validate());
        Assert.Contains(new VllmStack.Router.Configuration.RouterOptions { Migration = new MigrationOptions { MaxMigrations = -1 } }.Validate(),
            p => p.Contains("--max-migrations", StringComparison.Ordinal));
        Assert.False(new MigrationOptions { MaxMigrations = 0 }.Enabled);
        Assert.Equal("Router:Migration:MaxMigrations", VllmStack.Router.Configuration.RouterCommandLine.SwitchMappings["--max-migrations"]);
    }
}
