using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.EngineSim.Integration;

public sealed class ApiKeySimFixture : SimFixture
{
    public const string Key = "sk-test-engine-key";

    protected override IEnumerable<string> Args => ["--latency-preset", "fast", "--api-key", Key, "--enable-prompt-tokens-details"];
}

/// <summary>The official OpenAI .NET SDK against a running simulator: what a user's client sees.</summary>
public sealed class OpenAiSdkTests(ApiKeySimFixture fixture) : IClassFixture<ApiKeySimFixture>
{
    private const string Model = EngineSimProcess.DefaultModel;

    private OpenAIClient Client(string key = ApiKeySimFixture.Key) => new(new ApiKeyCredential(key), new OpenAIClientOptions
    {
        Endpoint = new Uri(fixture.Sim.BaseUrl, "v1"),
        NetworkTimeout = TimeSpan.FromSeconds(30),
    });

    [Fact]
    public async Task Lists_the_served_model()
    {
        var models = await Client().GetOpenAIModelClient().GetModelsAsync();
        Assert.Contains(models.Value, m => m.Id == Model && m.OwnedBy == "vllm");
    }

    [Fact]
    public async Task Chat_completion_reports_text_finish_reason_and_usage()
    {
        var chat = Client().GetChatClient(Model);
        // Five tokens end before the first sentence can: the finish reason must be "length".
        var result = await chat.CompleteChatAsync(
            [new SystemChatMessage("You are terse."), new UserChatMessage("Describe a river in one line.")],
            new ChatCompletionOptions { MaxOutputTokenCount = 5 });

        var completion = result.Value;
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.False(string.IsNullOrWhiteSpace(completion.Content[0].Text));
        Assert.Equal(5, completion.Usage.OutputTokenCount);
        Assert.True(completion.Usage.InputTokenCount > 10);
        Assert.Equal(completion.Usage.InputTokenCount + 5, completion.Usage.TotalTokenCount);
        Assert.Equal(Model, completion.Model);
        Assert.StartsWith("chatcmpl-", completion.Id);
    }

    [Fact]
    public async Task Streaming_chat_delivers_text_incrementally_and_usage_at_the_end()
    {
        var chat = Client().GetChatClient(Model);
        var parts = new List<string>();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Tell me about caches.")], new ChatCompletionOptions { MaxOutputTokenCount = 24 }))
        {
            parts.AddRange(update.ContentUpdate.Select(p => p.Text).Where(t => t.Length > 0));
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }

        Assert.True(parts.Count >= 2, "the answer should arrive in several chunks");
        Assert.NotNull(finish);
        Assert.NotNull(usage);
        Assert.InRange(usage.OutputTokenCount, 1, 24);
        Assert.True(usage.InputTokenCount > 5);
    }

    [Fact]
    public async Task Completions_through_the_sdk_pipeline_count_usage()
    {
        // The SDK keeps its legacy completions client internal; its pipeline (auth, transport, errors) is public.
        var pipeline = Client().GetChatClient(Model).Pipeline;
        using var message = pipeline.CreateMessage();
        message.Request.Method = "POST";
        message.Request.Uri = new Uri(fixture.Sim.BaseUrl, "v1/completions");
        message.Request.Headers.Set("Content-Type", "application/json");
        message.Request.Content = BinaryContent.Create(BinaryData.FromString($$"""{"model":"{{Model}}","prompt":"Once upon a time","max_tokens":6,"ignore_eos":true}"""));
        message.ResponseClassifier = PipelineMessageClassifier.Create([200]);
        await pipeline.SendAsync(message);

        Assert.Equal(200, message.Response!.Status);
        var body = JsonNode.Parse(message.Response.Content.ToString())!;
        Assert.Equal("text_completion", body["object"]!.GetValue<string>());
        Assert.Equal("length", body["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.Equal(6, body["usage"]!["completion_tokens"]!.GetValue<int>());
        // "Once upon a time" is 4 word tokens plus the beginning-of-text token.
        Assert.Equal(5, body["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.False(string.IsNullOrEmpty(body["choices"]![0]!["text"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Embeddings_are_deterministic_unit_vectors()
    {
        var embeddings = Client().GetEmbeddingClient(Model);
        var first = (await embeddings.GenerateEmbeddingAsync("a sentence to embed")).Value.ToFloats().ToArray();
        var again = (await embeddings.GenerateEmbeddingAsync("a sentence to embed")).Value.ToFloats().ToArray();
        var other = (await embeddings.GenerateEmbeddingAsync("something else")).Value.ToFloats().ToArray();

        Assert.Equal(1024, first.Length);
        Assert.Equal(1.0, Math.Sqrt(first.Sum(v => (double)v * v)), 3);
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public async Task Unknown_model_is_a_404_the_sdk_reports()
    {
        var error = await Assert.ThrowsAsync<ClientResultException>(() =>
            Client().GetChatClient("no-such-model").CompleteChatAsync([new UserChatMessage("hi")]));
        Assert.Equal(404, error.Status);
        Assert.Contains("does not exist", error.Message);
    }

    [Fact]
    public async Task Wrong_api_key_is_a_401_and_the_right_one_works()
    {
        var error = await Assert.ThrowsAsync<ClientResultException>(() => Client("sk-wrong").GetOpenAIModelClient().GetModelsAsync());
        Assert.Equal(401, error.Status);
        using var anonymous = new HttpClient { BaseAddress = fixture.Sim.BaseUrl };
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await anonymous.GetAsync("v1/models")).StatusCode);
        // Health and metrics stay open to probes and scrapers, as in vLLM.
        Assert.True((await anonymous.GetAsync("health")).IsSuccessStatusCode);
        Assert.True((await anonymous.GetAsync("metrics")).IsSuccessStatusCode);
    }
}
