using System.Text;
using VllmStack.EngineSim.Tokenization;

namespace VllmStack.EngineSim.Generation;

/// <summary>Produces a sequence's output tokens one at a time, ending with an end-of-sequence token.</summary>
public abstract class TokenSource
{
    /// <summary>The next output token. <paramref name="allowEnd"/> false (ignore_eos, min_tokens) asks for a non-EOS token.</summary>
    public abstract int Next(bool allowEnd);

    public abstract int EndToken { get; }
}

/// <summary>
/// Sentences of common words from a seeded generator: the same seed and prompt give the same answer.
/// After each sentence the answer ends with a fixed probability, so natural lengths average about 100 tokens.
/// </summary>
public sealed class RandomTokenSource(ulong seed, int endToken) : TokenSource
{
    private const double EndAfterSentence = 0.15;
    private readonly Random _random = new(unchecked((int)(seed ^ (seed >> 32))));
    private readonly Queue<int> _pending = new();
    private readonly List<int> _scratch = new(8);
    private int _wordsLeftInSentence = -1;
    private bool _atStart = true;

    public override int EndToken { get; } = endToken;

    public override int Next(bool allowEnd)
    {
        if (_pending.Count == 0)
        {
            if (_wordsLeftInSentence == 0)
            {
                _wordsLeftInSentence = -1;
                if (allowEnd && _random.NextDouble() < EndAfterSentence)
                {
                    return EndToken;
                }
            }
            FillNextWord();
        }
        return _pending.Dequeue();
    }

    private void FillNextWord()
    {
        var sentenceStart = _wordsLeftInSentence < 0;
        if (sentenceStart)
        {
            _wordsLeftInSentence = _random.Next(6, 18);
        }
        var word = WordList.Words[_random.Next(WordList.Words.Length)];
        var text = new StringBuilder(word.Length + 2);
        if (!_atStart)
        {
            text.Append(' ');
        }
        _atStart = false;
        text.Append(sentenceStart ? char.ToUpperInvariant(word[0]) + word[1..] : word);
        _wordsLeftInSentence--;
        if (_wordsLeftInSentence == 0)
        {
            text.Append('.');
        }
        else if (_random.NextDouble() < 0.06)
        {
            text.Append(',');
        }
        _scratch.Clear();
        SimTokenizer.Encode(text.ToString(), _scratch);
        foreach (var token in _scratch)
        {
            _pending.Enqueue(token);
        }
    }
}

/// <summary>Returns the given tokens, then the end token; asked to go on (ignore_eos), it starts over after a space.</summary>
public sealed class EchoTokenSource(int[] tokens, int endToken) : TokenSource
{
    private static readonly int Space = SimTokenizer.PieceId(" ");
    private readonly bool _needsSeparator = tokens.Length > 0 && !SimTokenizer.Decode(tokens.AsSpan(0, 1)).StartsWith(' ');
    private int _position;
    private bool _separated;

    public override int EndToken { get; } = endToken;

    public override int Next(bool allowEnd)
    {
        if (tokens.Length == 0)
        {
            return allowEnd ? EndToken : SimTokenizer.PieceId(" ");
        }
        if (_position >= tokens.Length)
        {
            if (allowEnd)
            {
                return EndToken;
            }
            if (_needsSeparator && !_separated)
            {
                _separated = true;
                return Space;
            }
            _position = 0;
            _separated = false;
        }
        return tokens[_position++];
    }
}
