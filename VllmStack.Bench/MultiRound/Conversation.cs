namespace VllmStack.Bench.MultiRound;

/// <summary>One message of an OpenAI chat conversation.</summary>
public sealed record ChatMessage(string Role, string Content)
{
    public const string System = "system";
    public const string User = "user";
    public const string Assistant = "assistant";
}

/// <summary>One request of a conversation: the whole history so far, ending with the new question.</summary>
/// <param name="Model">The model (or LoRA adapter) this request names; null: the endpoint's.</param>
public sealed record ChatTurn(string UserId, int Round, IReadOnlyList<ChatMessage> Messages, string? Model = null);

/// <summary>
/// One simulated user's conversation: the shared system prompt, then the user's document together with the first
/// question, then question after answer. Every answer stays in the history, so each round's prompt begins with
/// the previous round's whole prompt and answer — the prefix that prefix caching and KV-aware routing reuse.
/// </summary>
public sealed class Conversation
{
    private readonly List<ChatMessage> _messages = [];
    private readonly Func<int, string> _question;
    private readonly string _document;
    private bool _awaitingAnswer;

    internal Conversation(int userNumber, string? systemPrompt, string document, int rounds, Func<int, string> question)
    {
        UserNumber = userNumber;
        UserId = ConversationFactory.UserId(userNumber);
        Rounds = rounds;
        _document = document;
        _question = question;
        if (!string.IsNullOrEmpty(systemPrompt))
        {
            _messages.Add(new ChatMessage(ChatMessage.System, systemPrompt));
        }
    }

    public int UserNumber { get; }

    public string UserId { get; }

    public int Rounds { get; }

    /// <summary>Rounds asked and settled (answered, or given up after a failed request).</summary>
    public int RoundsDone { get; private set; }

    public bool IsFinished => RoundsDone >= Rounds;

    public IReadOnlyList<ChatMessage> Messages => _messages;

    /// <summary>Appends the next question and returns the request to send: a snapshot of the whole history.</summary>
    public ChatTurn Ask()
    {
        if (_awaitingAnswer || IsFinished)
        {
            throw new InvalidOperationException(IsFinished ? "The conversation is over." : "The previous question has no answer yet.");
        }
        var round = RoundsDone + 1;
        var question = _question(round);
        // The document opens the first user message (not a message of its own) so that roles alternate as strict
        // chat templates require; after a failed first round it opens the next question instead.
        var first = !_messages.Any(m => m.Role == ChatMessage.User);
        var content = first && _document.Length > 0 ? _document + "\n\n" + question : question;
        _messages.Add(new ChatMessage(ChatMessage.User, content));
        _awaitingAnswer = true;
        return new ChatTurn(UserId, round, [.. _messages]);
    }

    public void Answer(string answer)
    {
        EnsureAwaitingAnswer();
        _messages.Add(new ChatMessage(ChatMessage.Assistant, answer));
        _awaitingAnswer = false;
        RoundsDone++;
    }

    /// <summary>
    /// The request failed: the unanswered question is taken back (the history stays a valid alternation) and the
    /// round counts as done, so that a failing server cannot keep a user on one round for ever.
    /// </summary>
    public void GiveUpRound()
    {
        EnsureAwaitingAnswer();
        _messages.RemoveAt(_messages.Count - 1);
        _awaitingAnswer = false;
        RoundsDone++;
    }

    private void EnsureAwaitingAnswer()
    {
        if (!_awaitingAnswer)
        {
            throw new InvalidOperationException("No question is waiting for an answer.");
        }
    }
}
