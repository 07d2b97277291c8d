using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VllmStack.Tests.Infrastructure;
using VllmStack.Tests.Router;

namespace VllmStack.Tests.EngineSim.Integration;

/// <summary>
/// Where the stack depends on what vLLM does: invalid bodies are 400s (not 500s a router would take for the engine's
/// failure), stream headers go out before the first token, and the scoring and speech-to-text APIs have vLLM's shapes.
/// </summary>
public sealed class VllmSurfaceTests(EchoSimFixture fixture) : IClassFixture<EchoSimFixture>
{
    private const string Model = EngineSimProcess.DefaultModel;
    private HttpClient Http => fixture.Sim.Http;

    [Fact]
    public async Task A_body_that_is_not_utf8_is_a_400_as_vllm_answers_it()
    {
        using var content = new ByteArrayContent([.. "{\"model\":\"test-org/test-model-8b\",\"prompt\":\""u8, 0xFF, 0xFE, .. "\"}"u8]);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var response = await Http.PostAsync("v1/completions", content);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("There was an error parsing the body", error["message"]!.GetValue<string>());
        Assert.Equal("Bad Request", error["type"]!.GetValue<string>());

        // Valid JSON whose escapes decode to no text (a lone surrogate) is refused the same way, never a 500.
        var (surrogate, surrogateBody) = await OpenAiHttp.PostRawAsync(Http, "v1/chat/completions",
            """{"model":"test-org/test-model-8b","messages":[{"role":"user","content":"\ud800"}]}""");
        Assert.Equal((400, "Bad Request"), (surrogate, surrogateBody!["error"]!["type"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Stream_headers_go_out_before_a_delayed_first_token()
    {
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions")
        {
            Content = JsonContent.Create(new { model = Model, messages = new[] { new { role = "user", content = "late words" } }, stream = true }),
        };
        // A delay long enough that the headers' time on a loaded machine cannot be mistaken for it.
        request.Headers.Add("x-vllmsim-first-token-delay-ms", "5000");
        using var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        var headersAt = clock.Elapsed;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        await using var body = await response.Content.ReadAsStreamAsync();
        var first = new byte[1];
        Assert.Equal(1, await body.ReadAsync(first));
        var firstByteAt = clock.Elapsed;
        Assert.True(headersAt < TimeSpan.FromSeconds(2.5), $"headers after {headersAt}");
        Assert.True(firstByteAt >= TimeSpan.FromSeconds(4.9), $"first byte after {firstByteAt}");
    }

    [Fact]
    public async Task Rerank_orders_documents_by_relevance_with_vllms_shape_under_all_three_paths()
    {
        var documents = new[] { "the weather is mild today", "a cache keeps the prefix of a prompt", "the prefix cache of the engine keeps prompt blocks" };
        JsonNode? previous = null;
        foreach (var path in new[] { "rerank", "v1/rerank", "v2/rerank" })
        {
            var (status, body) = await OpenAiHttp.PostJsonAsync(Http, path, new { model = Model, query = "engine prefix cache", documents, top_n = 2 });
            Assert.Equal(200, status);
            Assert.StartsWith("rerank-", body!["id"]!.GetValue<string>());
            Assert.Equal(Model, body["model"]!.GetValue<string>());
            Assert.True(body["usage"]!["total_tokens"]!.GetValue<int>() > 0);
            var results = body["results"]!.AsArray();
            Assert.Equal(2, results.Count);
            Assert.Equal(2, results[0]!["index"]!.GetValue<int>());
            Assert.Equal(documents[2], results[0]!["document"]!["text"]!.GetValue<string>());
            Assert.True(results[0]!["relevance_score"]!.GetValue<double>() > results[1]!["relevance_score"]!.GetValue<double>());
            // Deterministic: the same request scores the same.
            Assert.Equal(previous?["results"]?.ToJsonString() ?? results.ToJsonString(), results.ToJsonString());
            previous = body;
        }
        var (unknown, _) = await OpenAiHttp.PostJsonAsync(Http, "v1/rerank", new { model = "no-such-model", query = "q", documents });
        Assert.Equal(404, unknown);
        var (empty, _) = await OpenAiHttp.PostJsonAsync(Http, "v1/rerank", new { model = Model, query = "q", documents = Array.Empty<string>() });
        Assert.Equal(400, empty);
    }

    [Fact]
    public async Task Score_pairs_one_text_with_many_or_pairs_lists_element_by_element()
    {
        var (status, body) = await OpenAiHttp.PostJsonAsync(Http, "score", new { model = Model, text_1 = "kv cache", text_2 = new[] { "the kv cache", "a garden" } });
        Assert.Equal(200, status);
        Assert.Equal("list", body!["object"]!.GetValue<string>());
        var data = body["data"]!.AsArray();
        Assert.Equal([0, 1], data.Select(d => d!["index"]!.GetValue<int>()));
        Assert.All(data, d => Assert.Equal("score", d!["object"]!.GetValue<string>()));
        Assert.True(data[0]!["score"]!.GetValue<double>() > data[1]!["score"]!.GetValue<double>());
        Assert.Equal(0, body["usage"]!["completion_tokens"]!.GetValue<int>());

        var (pairwise, pairs) = await OpenAiHttp.PostJsonAsync(Http, "v1/score", new { model = Model, text_1 = new[] { "a", "b" }, text_2 = new[] { "a", "c" } });
        Assert.Equal(200, pairwise);
        Assert.Equal(2, pairs!["data"]!.AsArray().Count);
        var (mismatch, _) = await OpenAiHttp.PostJsonAsync(Http, "v1/score", new { model = Model, text_1 = new[] { "a", "b" }, text_2 = new[] { "a", "b", "c" } });
        Assert.Equal(400, mismatch);
    }

    [Fact]
    public async Task Transcription_answers_deterministic_text_and_its_duration()
    {
        async Task<(int Status, string Text)> TranscribeAsync(string path, byte[] audio, string model = Model, string? format = null)
        {
            using var form = new MultipartFormDataContent { { new StringContent(model), "model" }, { new ByteArrayContent(audio), "file", "speech.wav" } };
            if (format is not null)
            {
                form.Add(new StringContent(format), "response_format");
            }
            using var response = await Http.PostAsync(path, form);
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }

        var audio = new byte[96_000];
        new Random(3).NextBytes(audio);
        var (status, text) = await TranscribeAsync("v1/audio/transcriptions", audio);
        Assert.Equal(200, status);
        var body = JsonNode.Parse(text)!;
        var transcript = body["text"]!.GetValue<string>();
        Assert.True(transcript.Split(' ').Length >= 5, transcript);
        Assert.Equal("duration", body["usage"]!["type"]!.GetValue<string>());
        Assert.Equal(3, body["usage"]!["seconds"]!.GetValue<int>());
        Assert.Equal(transcript, JsonNode.Parse((await TranscribeAsync("v1/audio/translations", audio)).Text)!["text"]!.GetValue<string>());
        audio[0] ^= 0xFF;
        Assert.NotEqual(transcript, JsonNode.Parse((await TranscribeAsync("v1/audio/transcriptions", audio)).Text)!["text"]!.GetValue<string>());

        var (plain, plainText) = await TranscribeAsync("v1/audio/transcriptions", audio, format: "text");
        Assert.Equal(200, plain);
        Assert.EndsWith(".", plainText);
        Assert.Equal(404, (await TranscribeAsync("v1/audio/transcriptions", audio, model: "no-such-model")).Status);
        Assert.Equal(400, (await TranscribeAsync("v1/audio/transcriptions", audio, format: "srt")).Status);

        // A body cut short is the client's mistake: 400, as FastAPI answers a form it cannot parse.
        using var truncated = new ByteArrayContent(BadRequestCorpus.Multipart(Model, new byte[1000])[..600]);
        truncated.Headers.TryAddWithoutValidation("Content-Type", $"multipart/form-data; boundary={BadRequestCorpus.Boundary}");
        using var cut = await Http.PostAsync("v1/audio/transcriptions", truncated);
        Assert.Equal(HttpStatusCode.BadRequest, cut.StatusCode);
    }
}
