using System.Text.Json;

namespace VllmStack.ServiceDefaults.Json;

/// <summary>
/// JSON text is valid with an escape that decodes to no text — a lone surrogate such as <c>"\ud800"</c> — but a reader
/// that decodes that string fails. These checks find such strings anywhere in a document, while reading it once, so
/// that a request carrying one is refused as the client's mistake (400) instead of failing deep inside a handler.
/// Only escaped strings are decoded to check them; the rest cost a flag test.
/// </summary>
public static class JsonEscapes
{
    /// <summary>Throws <see cref="JsonException"/> when the current string or property name does not decode to text.</summary>
    public static void CheckDecodable(ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped)
        {
            return;
        }
        try
        {
            reader.GetString();
        }
        catch (InvalidOperationException e)
        {
            throw new JsonException($"A string's escapes do not decode to text: {e.Message}");
        }
    }

    /// <summary>
    /// Moves past the current value as <see cref="Utf8JsonReader.Skip"/> does (from a property name, past its value; from
    /// the start of an object or array, to its end), checking every string and property name on the way.
    /// </summary>
    public static void SkipChecked(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.PropertyName)
        {
            CheckDecodable(ref reader);
            reader.Read();
        }
        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
        {
            var depth = reader.CurrentDepth;
            while (reader.Read() && reader.CurrentDepth > depth)
            {
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName)
                {
                    CheckDecodable(ref reader);
                }
            }
        }
        else if (reader.TokenType == JsonTokenType.String)
        {
            CheckDecodable(ref reader);
        }
    }

    /// <summary>True when <paramref name="json"/> (already known to be valid JSON) has no string whose escapes fail to decode.</summary>
    public static bool AllDecodable(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 1024 });
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName)
                {
                    CheckDecodable(ref reader);
                }
            }
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
