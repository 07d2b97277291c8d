using VllmStack.EngineSim.Tokenization;

namespace VllmStack.Tests.EngineSim;

public sealed class SimTokenizerTests
{
    private const string English =
        "The router is the product's front door: every token a user gets passes through it. It must be correct " +
        "with every OpenAI client, add almost no latency, never hang, and route so that engines reuse their KV " +
        "cache and stay evenly loaded. Platform teams serve large language models to many users and want it fast, " +
        "cheap and boring to operate, with 24 GiB of memory and 2 cores on 1 machine in 2026.";

    [Fact]
    public void English_averages_about_four_characters_per_token()
    {
        var ratio = English.Length / (double)SimTokenizer.Count(English);
        Assert.InRange(ratio, 3.3, 4.7);
    }

    [Theory]
    [InlineData(English)]
    [InlineData("Ünïcödé — 日本語 and emoji 🚀 survive; tabs\tand\nnew lines too.")]
    [InlineData("  leading spaces, trailing  ")]
    [InlineData("numbers 1234567 and 3.14159")]
    [InlineData("")]
    public void Decode_reverses_encode(string text) => Assert.Equal(text, SimTokenizer.Decode(SimTokenizer.Encode(text)));

    [Fact]
    public void Ids_are_the_same_in_every_process()
    {
        // Fixed by the encoding itself, not by any table: " the" is four base-65 symbols plus 256.
        Assert.Equal([SimTokenizer.PieceId(" the")], SimTokenizer.Encode(" the"));
        Assert.Equal(256 + 63 + 20 * 65 + 8 * 65 * 65 + 5 * 65 * 65 * 65, SimTokenizer.PieceId(" the"));
    }

    [Fact]
    public void Special_tokens_are_single_ids_only_when_asked()
    {
        var text = SimTokenizer.StartHeader + "user" + SimTokenizer.EndHeader;
        Assert.Equal(3, SimTokenizer.Encode(text, parseSpecial: true).Length);
        Assert.True(SimTokenizer.Encode(text).Length > 10);
        Assert.Equal(text, SimTokenizer.Decode(SimTokenizer.Encode(text, parseSpecial: true)));
        Assert.Equal("user", SimTokenizer.Decode(SimTokenizer.Encode(text, parseSpecial: true), skipSpecial: true));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(256)]
    [InlineData(256 + 65)]
    public void Ids_no_text_produces_are_rejected(int id)
    {
        Assert.False(SimTokenizer.IsValid(id));
        Assert.Throws<ArgumentOutOfRangeException>(() => SimTokenizer.Decode([id]));
    }

    [Fact]
    public void Incremental_decoding_holds_back_split_characters()
    {
        var tokens = SimTokenizer.Encode("a 🚀 b");
        var decoder = new IncrementalDecoder();
        var pieces = tokens.Select(decoder.Next).ToList();
        Assert.Equal("a 🚀 b", string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
    }

    [Fact]
    public void Chat_template_costs_a_few_tokens_per_message()
    {
        var messages = new[] { new ChatMessage("system", "Be brief."), new ChatMessage("user", "Hello there") };
        var templated = SimTokenizer.Encode(ChatTemplate.Render(messages), parseSpecial: true).Length;
        var content = SimTokenizer.Count("Be brief.") + SimTokenizer.Count("Hello there");
        Assert.InRange(templated - content, 10, 30);
    }
}
