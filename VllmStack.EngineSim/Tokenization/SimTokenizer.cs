using System.Text;

namespace VllmStack.EngineSim.Tokenization;

/// <summary>
/// A deterministic, reversible tokenizer with realistic counts (about four characters of English per token),
/// so that every process agrees on token ids without a vocabulary file.
/// <list type="bullet">
/// <item>A word (letters and apostrophes, with one leading space if there is one) becomes pieces of at most
/// five characters; a run of digits becomes pieces of at most three, as Llama 3 splits numbers.</item>
/// <item>A piece is its own id: its characters as base-65 digits over a 64-symbol alphabet, plus 256.</item>
/// <item>Every other character is one token per UTF-8 byte (ids 0–255).</item>
/// <item>A few special tokens (chat template markers) have ids above every piece id.</item>
/// </list>
/// </summary>
public static class SimTokenizer
{
    public const int MaxWordPiece = 5;
    public const int MaxDigitPiece = 3;
    private const int Radix = 65;
    private const int PieceBase = 256;
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 '";
    private static readonly sbyte[] SymbolOf = BuildSymbolTable();

    public const int SpecialBase = 1_200_000_000;
    public const string BeginOfText = "<|begin_of_text|>";
    public const string EndOfText = "<|end_of_text|>";
    public const string StartHeader = "<|start_header_id|>";
    public const string EndHeader = "<|end_header_id|>";
    public const string EndOfTurn = "<|eot_id|>";

    private static readonly string[] Specials = [BeginOfText, EndOfText, StartHeader, EndHeader, EndOfTurn];

    public static int BeginOfTextId => SpecialBase;
    public static int EndOfTextId => SpecialBase + 1;
    public static int EndOfTurnId => SpecialBase + 4;

    public static bool IsSpecial(int id) => id >= SpecialBase && id < SpecialBase + Specials.Length;

    public static int Count(string text, bool parseSpecial = false)
    {
        var tokens = new List<int>(text.Length / 3 + 4);
        Encode(text, tokens, parseSpecial);
        return tokens.Count;
    }

    public static int[] Encode(string text, bool parseSpecial = false)
    {
        var tokens = new List<int>(text.Length / 3 + 4);
        Encode(text, tokens, parseSpecial);
        return [.. tokens];
    }

    /// <summary>Appends the tokens of <paramref name="text"/>; special token markers are recognised only when asked.</summary>
    public static void Encode(ReadOnlySpan<char> text, List<int> output, bool parseSpecial = false)
    {
        Span<byte> bytes = stackalloc byte[8];
        var i = 0;
        while (i < text.Length)
        {
            if (parseSpecial && text[i] == '<' && MatchSpecial(text[i..]) is var (special, length) && length > 0)
            {
                output.Add(special);
                i += length;
                continue;
            }
            var start = i;
            var hasSpace = text[i] == ' ' && i + 1 < text.Length && (IsWordChar(text[i + 1]) || char.IsAsciiDigit(text[i + 1]));
            var body = hasSpace ? i + 1 : i;
            if (body < text.Length && IsWordChar(text[body]))
            {
                var end = body;
                while (end < text.Length && IsWordChar(text[end]))
                {
                    end++;
                }
                EmitPieces(text[start..end], MaxWordPiece, output);
                i = end;
            }
            else if (body < text.Length && char.IsAsciiDigit(text[body]))
            {
                var end = body;
                while (end < text.Length && char.IsAsciiDigit(text[end]))
                {
                    end++;
                }
                // The space travels with the first group of digits, as in " 123" + "45".
                var first = Math.Min(end - start, MaxDigitPiece + (hasSpace ? 1 : 0));
                output.Add(PieceId(text.Slice(start, first)));
                EmitPieces(text[(start + first)..end], MaxDigitPiece, output);
                i = end;
            }
            else if (text[i] == ' ')
            {
                output.Add(PieceId(" "));
                i++;
            }
            else
            {
                var runeLength = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
                var count = Encoding.UTF8.GetBytes(text.Slice(i, runeLength), bytes);
                for (var b = 0; b < count; b++)
                {
                    output.Add(bytes[b]);
                }
                i += runeLength;
            }
        }
    }

    /// <summary>Decodes ids back to text; throws <see cref="ArgumentOutOfRangeException"/> for an id no text produces.</summary>
    public static string Decode(ReadOnlySpan<int> tokens, bool skipSpecial = false)
    {
        var bytes = new List<byte>(tokens.Length * 4);
        foreach (var token in tokens)
        {
            AppendBytes(token, bytes, skipSpecial);
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    /// <summary>The UTF-8 bytes one token stands for (for incremental decoding).</summary>
    public static void AppendBytes(int token, List<byte> output, bool skipSpecial = false)
    {
        if (token is >= 0 and < PieceBase)
        {
            output.Add((byte)token);
            return;
        }
        if (IsSpecial(token))
        {
            if (!skipSpecial)
            {
                output.AddRange(Encoding.UTF8.GetBytes(Specials[token - SpecialBase]));
            }
            return;
        }
        if (token < PieceBase)
        {
            throw new ArgumentOutOfRangeException(nameof(token), token, $"Token id {token} is out of vocabulary.");
        }
        var value = (long)token - PieceBase;
        if (value == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(token), token, $"Token id {token} is out of vocabulary.");
        }
        while (value > 0)
        {
            var symbol = (int)(value % Radix);
            if (symbol == 0)
            {
                throw new ArgumentOutOfRangeException(nameof(token), token, $"Token id {token} is out of vocabulary.");
            }
            output.Add((byte)Alphabet[symbol - 1]);
            value /= Radix;
        }
    }

    public static bool IsValid(int token)
    {
        if (token is >= 0 and < PieceBase || IsSpecial(token))
        {
            return true;
        }
        if (token < PieceBase)
        {
            return false;
        }
        var value = (long)token - PieceBase;
        if (value == 0)
        {
            return false;
        }
        for (; value > 0; value /= Radix)
        {
            if (value % Radix == 0)
            {
                return false;
            }
        }
        return true;
    }

    internal static int PieceId(ReadOnlySpan<char> piece)
    {
        long id = 0;
        long scale = 1;
        foreach (var c in piece)
        {
            id += SymbolOf[c] * scale;
            scale *= Radix;
        }
        return (int)(id + PieceBase);
    }

    private static void EmitPieces(ReadOnlySpan<char> run, int maxPiece, List<int> output)
    {
        while (run.Length > 0)
        {
            var take = Math.Min(maxPiece, run.Length);
            output.Add(PieceId(run[..take]));
            run = run[take..];
        }
    }

    private static bool IsWordChar(char c) => char.IsAsciiLetter(c) || c == '\'';

    private static (int Id, int Length) MatchSpecial(ReadOnlySpan<char> text)
    {
        for (var s = 0; s < Specials.Length; s++)
        {
            if (text.StartsWith(Specials[s], StringComparison.Ordinal))
            {
                return (SpecialBase + s, Specials[s].Length);
            }
        }
        return (0, 0);
    }

    private static sbyte[] BuildSymbolTable()
    {
        var table = new sbyte[128];
        for (var i = 0; i < Alphabet.Length; i++)
        {
            table[Alphabet[i]] = (sbyte)(i + 1);
        }
        return table;
    }
}
