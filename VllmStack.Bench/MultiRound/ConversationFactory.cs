using System.Globalization;

namespace VllmStack.Bench.MultiRound;

/// <summary>The sizes of the multi-round QA conversations, in tokens (≈ 4 characters each).</summary>
public sealed record ConversationShape(int SystemPromptTokens, int HistoryTokens, int QuestionTokens, int Rounds, int Seed);

/// <summary>
/// Makes the conversations of one run, deterministically from the seed: one system prompt shared by every user,
/// and per user number a document and the questions of each round. Users are numbered from 0 in the order
/// they start; user <c>n</c> is called <c>user-n</c> (the value of the session header).
/// </summary>
public sealed class ConversationFactory
{
    // Distinct streams of the seed for the three kinds of text.
    private const long SystemPromptStream = 1;
    private const long DocumentStream = 2;
    private const long QuestionStream = 3;

    private readonly ConversationShape _shape;

    public ConversationFactory(ConversationShape shape)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(shape.Rounds);
        _shape = shape;
        SystemPrompt = shape.SystemPromptTokens > 0
            ? TextSynthesizer.Generate(DeterministicRandom.For(shape.Seed, SystemPromptStream), shape.SystemPromptTokens, "You are a helpful assistant. ")
            : "";
    }

    public string SystemPrompt { get; }

    public static string UserId(int userNumber) => "user-" + userNumber.ToString(CultureInfo.InvariantCulture);

    public string Document(int userNumber) =>
        TextSynthesizer.Generate(DeterministicRandom.For(_shape.Seed, DocumentStream, userNumber), _shape.HistoryTokens);

    /// <summary>The question of round <paramref name="round"/> (from 1) of user <paramref name="userNumber"/>.</summary>
    public string Question(int userNumber, int round)
    {
        var text = TextSynthesizer.Generate(DeterministicRandom.For(_shape.Seed, QuestionStream, userNumber, round), Math.Max(1, _shape.QuestionTokens));
        return text[..^1] + "?";
    }

    public Conversation Create(int userNumber) =>
        new(userNumber, SystemPrompt, Document(userNumber), _shape.Rounds, round => Question(userNumber, round));
}
