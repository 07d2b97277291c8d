using System.Text;

namespace VllmStack.EngineSim.Tokenization;

/// <summary>
/// Turns a stream of token ids into text deltas. A character split over several byte tokens is held back
/// until it is complete, so a stream never shows a broken character.
/// </summary>
public sealed class IncrementalDecoder
{
    private readonly Decoder _decoder = Encoding.UTF8.GetDecoder();
    private readonly List<byte> _bytes = new(16);
    private char[] _chars = new char[32];

    public string Next(int token)
    {
        _bytes.Clear();
        SimTokenizer.AppendBytes(token, _bytes, skipSpecial: true);
        if (_bytes.Count == 0)
        {
            return "";
        }
        var bytes = _bytes.ToArray();
        var needed = _decoder.GetCharCount(bytes, 0, bytes.Length, flush: false);
        if (needed > _chars.Length)
        {
            _chars = new char[needed * 2];
        }
        var written = _decoder.GetChars(bytes, 0, bytes.Length, _chars, 0, flush: false);
        return written == 0 ? "" : new string(_chars, 0, written);
    }
}
