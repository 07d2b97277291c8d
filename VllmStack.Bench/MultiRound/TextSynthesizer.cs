using System.Text;

namespace VllmStack.Bench.MultiRound;

/// <summary>
/// Deterministic English-like prose of about a requested number of tokens. Sizes are reckoned at
/// <see cref="CharsPerToken"/> characters per token, the usual figure for English with Llama-class tokenizers,
/// so that the same text is roughly the same size on a real vLLM and on EngineSim.
/// </summary>
public static class TextSynthesizer
{
    public const int CharsPerToken = 4;

    // Common words, weighted towards the short and the long: under a tokenizer that cuts words into pieces of a few
    // characters (as BPE does with rarer words, and as EngineSim's does), uniform choice over this list comes
    // to about four characters per token, punctuation included.
    private static readonly string[] Words =
    [
        "a", "about", "across", "after", "afternoon", "again", "air", "all", "along", "also", "always", "and", "answer",
        "any", "anything", "area", "arm", "around", "as", "ask", "at", "available", "away", "back", "bank", "base",
        "beautiful", "bed", "before", "begin", "best", "between", "big", "bird", "boat", "body", "book", "both", "box",
        "bring", "build", "building", "business", "but", "by", "call", "came", "can", "car", "care", "carefully",
        "case", "celebrate", "change", "character", "child", "children", "city", "clear", "cold", "come", "community",
        "complete", "consider", "continue", "could", "country", "cup", "cut", "dark", "day", "deep", "developed", "did",
        "different", "direction", "discovery", "district", "door", "down", "draw", "dry", "each", "early", "earth",
        "east", "easy", "eat", "education", "end", "equipment", "even", "ever", "every", "evidence", "example",
        "exercise", "eye", "face", "fact", "fall", "family", "far", "farm", "fast", "few", "fill", "find", "fire",
        "first", "fish", "five", "following", "food", "for", "form", "found", "four", "free", "from", "full", "game",
        "garden", "gave", "gentleman", "give", "go", "gold", "good", "got", "great", "group", "grow", "half", "hand",
        "hard", "has", "have", "head", "hear", "heat", "help", "here", "high", "hill", "hold", "home", "hot", "hour",
        "house", "household", "how", "idea", "important", "in", "including", "interview", "is", "it", "its", "just",
        "keep", "key", "kind", "know", "knowledge", "land", "language", "large", "last", "late", "lead", "learn",
        "left", "let", "life", "light", "line", "list", "little", "live", "long", "look", "lot", "low", "made", "main",
        "make", "many", "map", "mark", "material", "may", "might", "mile", "mind", "more", "morning", "most",
        "mountain", "move", "much", "must", "name", "national", "near", "necessary", "need", "never", "new",
        "newspaper", "next", "night", "no", "northern", "note", "nothing", "now", "of", "off", "often", "old", "on",
        "once", "one", "only", "open", "operation", "or", "other", "our", "out", "over", "own", "page", "part", "pass",
        "past", "people", "place", "plan", "play", "political", "port", "position", "possible", "practice", "probably",
        "put", "question", "rain", "read", "real", "red", "remember", "research", "rest", "river", "road", "rock",
        "room", "rule", "run", "said", "same", "saw", "sea", "see", "seem", "self", "sentence", "set", "ship", "should",
        "show", "side", "size", "sky", "slow", "small", "snow", "so", "some", "something", "sometimes", "song", "soon",
        "sound", "southern", "standard", "star", "start", "still", "stop", "story", "straight", "students", "such",
        "sun", "sure", "take", "talk", "tell", "ten", "test", "than", "that", "the", "their", "then", "there", "these",
        "thing", "think", "this", "thousand", "three", "through", "time", "to", "together", "told", "took", "top",
        "town", "tree", "true", "try", "turn", "two", "up", "upon", "use", "very", "walk", "wall", "want", "warm",
        "water", "wave", "way", "we", "week", "well", "went", "west", "what", "when", "where", "which", "who", "why",
        "wide", "wind", "with", "without", "wood", "word", "work", "world", "would", "year", "yesterday", "yet",
        "young",
    ];

    /// <summary>
    /// <paramref name="prefix"/> followed by sentences until the text is as close as whole words allow to
    /// <paramref name="tokens"/> tokens (the prefix counts towards the size).
    /// </summary>
    public static string Generate(DeterministicRandom random, int tokens, string prefix = "")
    {
        var budget = Math.Max(0, tokens) * CharsPerToken;
        var text = new StringBuilder(budget + 16).Append(prefix);
        var wordsLeft = 0;
        // Bounded: every pass appends a word or ends the loop, and the text only grows.
        while (text.Length < budget)
        {
            var word = Words[random.Next(Words.Length)];
            var startsSentence = wordsLeft == 0;
            var separator = startsSentence ? (text.Length > 0 && !char.IsWhiteSpace(text[^1]) ? " " : "") : random.Next(10) == 0 ? ", " : " ";
            var added = separator.Length + word.Length;
            // Stop short rather than overshoot by more (small sizes, a question, stay near their target), but
            // never return no text at all.
            if (text.Length > prefix.Length && text.Length + added - budget > budget - text.Length)
            {
                break;
            }
            text.Append(separator);
            if (startsSentence)
            {
                text.Append(char.ToUpperInvariant(word[0])).Append(word, 1, word.Length - 1);
                wordsLeft = random.Next(6, 18);
            }
            else
            {
                text.Append(word);
            }
            if (--wordsLeft == 0)
            {
                text.Append('.');
            }
        }
        if (text.Length > prefix.Length && text[^1] != '.')
        {
            text.Append('.');
        }
        return text.ToString();
    }
}
