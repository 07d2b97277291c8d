using System.IO.Hashing;
using System.Runtime.InteropServices;
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
/// Sentences of common words, where each decision depends only on the seed and the text before it: the rendered
/// prompt and what was generated so far. So a continuation — the same request with the answer so far appended to its
/// prompt (chat: a final assistant message with <c>continue_final_message</c>; completions: prompt + text) — goes on
/// word for word as the uninterrupted run did, which is what request migration needs to be checked against.
/// <list type="bullet">
/// <item>At a word boundary, an XXH64 of the context (incremental: each generated piece is appended to it) seeds the
/// step: whether the answer ends (only after a sentence's period, 15 %), the word, whether it closes the sentence (a
/// hazard that makes sentence lengths uniform over 6–17 words, counted in the context's current sentence) and a comma.</item>
/// <item>A word has a leading space unless the context ends in whitespace; it is capitalised when it opens a sentence.</item>
/// <item>A context that ends inside a word (a continuation cut between its pieces) is recognised: the word that would
/// have started at its last space is derived again and its remaining pieces come first.</item>
/// </list>
/// </summary>
public sealed class RandomTokenSource : TokenSource
{
    private const double EndAfterSentence = 0.15;
    private const int SentenceScan = 400;
    private readonly ulong _seed;
    private readonly XxHash64 _context;
    private readonly StringBuilder _recent = new();
    private readonly Queue<int> _pending = new();
    private readonly List<int> _scratch = new(8);

    /// <param name="context">The rendered prompt as text (chat template markers included), which the answer continues.</param>
    public RandomTokenSource(ulong seed, string context, int endToken)
    {
        _seed = seed;
        EndToken = endToken;
        _context = new XxHash64(unchecked((long)seed));
        if (ResumePoint(context) is (int start, List<int> tokens))
        {
            foreach (var token in tokens)
            {
                _pending.Enqueue(token);
            }
            Append(context.AsSpan(0, start));
            Append(context.AsSpan(start));
        }
        else
        {
            Append(context);
        }
    }

    public override int EndToken { get; }

    public override int Next(bool allowEnd)
    {
        if (_pending.Count == 0)
        {
            var step = new StepRandom(_context.GetCurrentHashAsUInt64());
            var endDraw = step.NextDouble();
            if (allowEnd && EndsSentence(_recent) && endDraw < EndAfterSentence)
            {
                return EndToken;
            }
            var word = Word(ref step, _recent);
            _scratch.Clear();
            SimTokenizer.Encode(word, _scratch);
            foreach (var token in _scratch)
            {
                _pending.Enqueue(token);
            }
        }
        var next = _pending.Dequeue();
        Append(SimTokenizer.Decode([next]));
        return next;
    }

    private void Append(ReadOnlySpan<char> text)
    {
        _context.Append(MemoryMarshal.AsBytes(text));
        _recent.Append(text);
        if (_recent.Length > 2 * SentenceScan)
        {
            _recent.Remove(0, _recent.Length - SentenceScan);
        }
    }

    /// <summary>
    /// When the context ends inside a word this source would have generated, where that word starts and its pieces not
    /// yet in the context; null at a word boundary.
    /// </summary>
    private (int Start, List<int> Remaining)? ResumePoint(string context)
    {
        var j = context.Length;
        while (j > 0 && !char.IsWhiteSpace(context[j - 1]))
        {
            j--;
        }
        if (j == context.Length)
        {
            return null;
        }
        // The word either brought its leading space, or followed whitespace that was there already.
        int[] candidates = j > 0 && context[j - 1] == ' ' ? [j - 1, j] : [j];
        foreach (var start in candidates)
        {
            var before = context.AsSpan(0, start);
            var hash = new XxHash64(unchecked((long)_seed));
            hash.Append(MemoryMarshal.AsBytes(before));
            var step = new StepRandom(hash.GetCurrentHashAsUInt64());
            step.NextDouble(); // the end-of-answer draw of that step
            var recent = new StringBuilder().Append(before[Math.Max(0, before.Length - 2 * SentenceScan)..]);
            var word = Word(ref step, recent);
            var tail = context.AsSpan(start);
            if (word.Length <= tail.Length || !word.AsSpan().StartsWith(tail, StringComparison.Ordinal))
            {
                continue;
            }
            var tokens = SimTokenizer.Encode(word);
            var covered = 0;
            var skip = 0;
            while (skip < tokens.Length && covered < tail.Length)
            {
                covered += SimTokenizer.Decode([tokens[skip]]).Length;
                skip++;
            }
            if (covered == tail.Length)
            {
                return (start, [.. tokens[skip..]]);
            }
        }
        return null;
    }

    private static bool EndsSentence(StringBuilder recent) => recent.Length > 0 && recent[^1] == '.';

    /// <summary>The next word's text after <paramref name="recent"/> (the context's tail), from the step's draws.</summary>
    private static string Word(ref StepRandom step, StringBuilder recent)
    {
        var atStart = recent.Length == 0 || char.IsWhiteSpace(recent[^1]);
        var wordsInSentence = WordsInSentence(recent);
        var position = wordsInSentence + 1;
        var closeDraw = step.NextDouble();
        var closes = position >= 17 || (position >= 6 && closeDraw < 1.0 / (18 - position));
        var word = WordList.Words[step.Next(WordList.Words.Length)];
        var commaDraw = step.NextDouble();
        var text = new StringBuilder(word.Length + 2);
        if (!atStart)
        {
            text.Append(' ');
        }
        text.Append(wordsInSentence == 0 ? char.ToUpperInvariant(word[0]) + word[1..] : word);
        if (closes)
        {
            text.Append('.');
        }
        else if (commaDraw < 0.06)
        {
            text.Append(',');
        }
        return text.ToString();
    }

    /// <summary>
    /// Words since the context's last sentence boundary (a period, a line break, a template marker's '>'); a sentence
    /// longer than the scan counts as long enough to close.
    /// </summary>
    private static int WordsInSentence(StringBuilder recent)
    {
        var words = 0;
        var inWord = false;
        var limit = Math.Max(0, recent.Length - SentenceScan);
        for (var i = recent.Length - 1; ; i--)
        {
            if (i < limit)
            {
                return i < 0 ? words : 17;
            }
            var c = recent[i];
            if (c is '.' or '\n' or '>')
            {
                return words;
            }
            if (c == ' ' || char.IsWhiteSpace(c))
            {
                inWord = false;
            }
            else if (!inWord)
            {
                inWord = true;
                words++;
            }
        }
    }

    /// <summary>SplitMix64 draws from one step's seed.</summary>
    private struct StepRandom(ulong state)
    {
        public ulong NextUInt64()
        {
            var z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

        public int Next(int maxExclusive) => (int)(NextUInt64() % (ulong)maxExclusive);
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
