using System.Text.Json;
using VllmStack.EngineSim.Api;
using VllmStack.EngineSim.Generation;
using VllmStack.EngineSim.Tokenization;

namespace VllmStack.Tests.EngineSim;

/// <summary>
/// The random output's text at a position depends only on the seed and the text before it: a fresh source given the
/// prompt plus any prefix of an answer (cut between any two tokens, mid-word included) goes on exactly as the
/// uninterrupted answer did — what a migrated stream is checked against.
/// </summary>
public sealed class ContinuationDeterminismTests
{
    private static readonly int End = SimTokenizer.EndOfTurnId;

    private static List<int> Run(ulong seed, string context, int max, bool allowEnd = true)
    {
        var source = new RandomTokenSource(seed, context, End);
        var tokens = new List<int>();
        while (tokens.Count < max)
        {
            var token = source.Next(allowEnd);
            if (token == End)
            {
                break;
            }
            tokens.Add(token);
        }
        return tokens;
    }

    private static string Chat(string question) =>
        ChatTemplate.Render([new ChatMessage("user", question)], addGenerationPrompt: true);

    [Theory]
    [InlineData(1UL)]
    [InlineData(42UL)]
    [InlineData(987654321UL)]
    public void A_continuation_cut_at_any_token_goes_on_as_the_uninterrupted_answer(ulong seed)
    {
        var prompt = Chat("Tell me about caches.");
        var whole = Run(seed, prompt, 300, allowEnd: false);
        var wholeText = SimTokenizer.Decode([.. whole]);
        for (var cut = 0; cut < whole.Count; cut += 1)
        {
            var delivered = SimTokenizer.Decode(whole.GetRange(0, cut).ToArray());
            var rest = Run(seed, prompt + delivered, whole.Count - cut, allowEnd: false);
            Assert.Equal(wholeText, delivered + SimTokenizer.Decode([.. rest]));
            Assert.Equal(whole.GetRange(cut, whole.Count - cut), rest);
        }
    }

    [Fact]
    public void The_end_of_the_answer_is_decided_by_the_text_too()
    {
        for (ulong seed = 0; seed < 20; seed++)
        {
            var prompt = Chat($"Question {seed}?");
            var whole = Run(seed, prompt, 2000);
            Assert.True(whole.Count < 2000, "an answer ends by itself");
            Assert.EndsWith(".", SimTokenizer.Decode([.. whole]));
            foreach (var cut in new[] { 1, whole.Count / 3, whole.Count / 2, whole.Count - 1 })
            {
                var delivered = SimTokenizer.Decode(whole.GetRange(0, cut).ToArray());
                Assert.Equal(whole.GetRange(cut, whole.Count - cut), Run(seed, prompt + delivered, 2000));
            }
        }
    }

    [Fact]
    public void Answers_read_as_sentences_and_depend_on_the_seed_and_the_prompt()
    {
        var prompt = Chat("Hello?");
        var text = SimTokenizer.Decode([.. Run(7, prompt, 400, allowEnd: false)]);
        Assert.True(char.IsUpper(text[0]));
        Assert.DoesNotContain("  ", text);
        var sentences = text.Split('.', StringSplitOptions.RemoveEmptyEntries).SkipLast(1).ToList();
        Assert.NotEmpty(sentences);
        Assert.All(sentences, s => Assert.InRange(s.Trim().Split(' ').Length, 6, 17));
        Assert.NotEqual(text, SimTokenizer.Decode([.. Run(8, prompt, 400, allowEnd: false)]));
        Assert.NotEqual(text, SimTokenizer.Decode([.. Run(7, Chat("Bye?"), 400, allowEnd: false)]));
    }

    [Fact]
    public void A_completion_continues_its_prompt_text()
    {
        const string prompt = "The router sends each request";
        var whole = Run(3, prompt, 120, allowEnd: false);
        var text = SimTokenizer.Decode([.. whole]);
        Assert.StartsWith(" ", text);
        for (var cut = 0; cut < whole.Count; cut += 7)
        {
            var delivered = SimTokenizer.Decode(whole.GetRange(0, cut).ToArray());
            Assert.Equal(whole.GetRange(cut, whole.Count - cut), Run(3, prompt + delivered, whole.Count - cut, allowEnd: false));
        }
    }

    [Fact]
    public void Continue_final_message_renders_the_partial_answer_after_the_generation_prompt()
    {
        var messages = new List<ChatMessage> { new("system", "Be brief."), new("user", "Hi") };
        const string partial = "Hello there, the cache";
        var continued = ChatTemplate.Render([.. messages, new ChatMessage("assistant", partial)], addGenerationPrompt: false, continueFinalMessage: true);
        Assert.Equal(ChatTemplate.Render(messages, addGenerationPrompt: true) + partial, continued);
        // Its tokens are the original prompt's followed by the answer's: the continuation's prefix blocks hash the same.
        Assert.Equal([.. SimTokenizer.Encode(ChatTemplate.Render(messages), parseSpecial: true), .. SimTokenizer.Encode(partial)],
            SimTokenizer.Encode(continued, parseSpecial: true));
    }

    /// <summary>
    /// The tools render as vLLM's templates render them (<c>tojson</c>), whatever the client's spacing: a router that
    /// re-serialises a body for a continuation must get the same prompt, or the continued text would differ.
    /// </summary>
    [Fact]
    public void Tools_render_the_same_however_the_client_spaced_them()
    {
        const string Compact = """{"messages":[{"role":"user","content":"Weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"tool_choice":"none"}""";
        const string Spaced = """{"messages": [{"role": "user", "content": "Weather?"}], "tools": [ {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}} ], "tool_choice": "none"}""";
        using var compact = JsonDocument.Parse(Compact);
        using var spaced = JsonDocument.Parse(Spaced);
        var a = GenerationRequest.ParseMessages(compact.RootElement);
        var b = GenerationRequest.ParseMessages(spaced.RootElement);
        Assert.Contains("get_weather", a.Text, StringComparison.Ordinal);
        Assert.Equal(a.Text, b.Text);
        Assert.Equal(a.Tokens, b.Tokens);
    }
}
