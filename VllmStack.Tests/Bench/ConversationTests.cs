using VllmStack.Bench.MultiRound;
using SimTokenizer = VllmStack.EngineSim.Tokenization.SimTokenizer;

namespace VllmStack.Tests.Bench;

public sealed class ConversationTests
{
    private static ConversationFactory Factory(int seed = 7, int rounds = 3) => new(new ConversationShape(
        SystemPromptTokens: 400, HistoryTokens: 600, QuestionTokens: 40, Rounds: rounds, Seed: seed));

    [Fact]
    public void Every_user_shares_the_same_system_prompt_but_has_its_own_document()
    {
        var factory = Factory();
        var a = factory.Create(0).Ask();
        var b = factory.Create(1).Ask();

        Assert.Equal(ChatMessage.System, a.Messages[0].Role);
        Assert.Equal(a.Messages[0], b.Messages[0]);
        Assert.Equal(a.Messages[0].Content, Factory().SystemPrompt);   // another factory, same seed
        Assert.NotEqual(factory.Document(0), factory.Document(1));
        Assert.StartsWith(factory.Document(0) + "\n\n", a.Messages[1].Content, StringComparison.Ordinal);
        Assert.Equal(("user-0", "user-1"), (a.UserId, b.UserId));
    }

    [Fact]
    public void History_grows_with_every_answer_and_each_prompt_extends_the_previous_one()
    {
        var conversation = Factory().Create(3);
        IReadOnlyList<ChatMessage> previous = [];
        for (var round = 1; round <= 3; round++)
        {
            var turn = conversation.Ask();
            Assert.Equal(round, turn.Round);
            Assert.Equal(2 * round, turn.Messages.Count);          // system + (question, answer)* + question
            Assert.Equal<ChatMessage>(previous, turn.Messages.Take(previous.Count));
            Assert.Equal(ChatMessage.User, turn.Messages[^1].Role);
            Assert.EndsWith("?", turn.Messages[^1].Content, StringComparison.Ordinal);

            conversation.Answer($"answer {round}");
            previous = [.. conversation.Messages];
            Assert.Equal(new ChatMessage(ChatMessage.Assistant, $"answer {round}"), previous[^1]);
        }
        Assert.True(conversation.IsFinished);
        Assert.Throws<InvalidOperationException>(() => conversation.Ask());
    }

    [Fact]
    public void A_failed_round_is_taken_back_and_the_document_still_opens_the_conversation()
    {
        var factory = Factory();
        var conversation = factory.Create(2);
        var first = conversation.Ask();
        Assert.Throws<InvalidOperationException>(() => conversation.Ask());   // one question at a time
        conversation.GiveUpRound();

        Assert.Single(conversation.Messages);                                 // only the system prompt
        var second = conversation.Ask();
        Assert.Equal(2, second.Round);
        Assert.StartsWith(factory.Document(2) + "\n\n", second.Messages[1].Content, StringComparison.Ordinal);
        Assert.NotEqual(first.Messages[1].Content, second.Messages[1].Content);
    }

    [Theory]
    [InlineData(50)]
    [InlineData(200)]
    [InlineData(1000)]
    [InlineData(8000)]
    public void Texts_are_within_20_percent_of_the_requested_tokens(int tokens)
    {
        var factory = new ConversationFactory(new ConversationShape(tokens, tokens, tokens, 4, Seed: 11));
        var texts = new List<string> { factory.SystemPrompt };
        for (var user = 0; user < 5; user++)
        {
            texts.Add(factory.Document(user));
            texts.AddRange(Enumerable.Range(1, 4).Select(round => factory.Question(user, round)));
        }
        foreach (var text in texts)
        {
            Assert.InRange(SimTokenizer.Count(text), tokens * 0.8, tokens * 1.2);
        }
    }

    [Fact]
    public void The_seed_decides_the_text()
    {
        Assert.Equal(Factory(seed: 1).Question(4, 2), Factory(seed: 1).Question(4, 2));
        Assert.Equal(Factory(seed: 1).Document(4), Factory(seed: 1).Document(4));
        Assert.NotEqual(Factory(seed: 1).SystemPrompt, Factory(seed: 2).SystemPrompt);
        Assert.NotEqual(Factory().Question(4, 2), Factory().Question(4, 3));
    }

    [Fact]
    public void Zero_sized_prompt_parts_are_left_out()
    {
        var factory = new ConversationFactory(new ConversationShape(0, 0, 10, 1, 0));
        var turn = factory.Create(0).Ask();
        Assert.Equal(ChatMessage.User, Assert.Single(turn.Messages).Role);
    }
}
