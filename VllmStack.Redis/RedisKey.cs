using System.Text;

namespace VllmStack.Redis;

/// <summary>
/// A key, given as text (sent as UTF-8) or as raw bytes. Strings and byte arrays convert implicitly, so
/// <c>client.GetAsync("chunk:1")</c> and <c>client.GetAsync(hashBytes)</c> both work.
/// </summary>
public readonly struct RedisKey
{
    private readonly string? _text;
    private readonly byte[]? _bytes;

    public RedisKey(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        _text = text;
        _bytes = null;
    }

    public RedisKey(byte[] bytes)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        _text = null;
        _bytes = bytes;
    }

    /// <summary>False only for <c>default(RedisKey)</c>, which commands reject.</summary>
    public bool HasValue => _text is not null || _bytes is not null;

    public static implicit operator RedisKey(string text) => new(text);

    public static implicit operator RedisKey(byte[] bytes) => new(bytes);

    /// <summary>The key as the bytes sent to the server.</summary>
    public byte[] ToBytes() => _bytes ?? Encoding.UTF8.GetBytes(_text ?? throw Missing());

    public override string ToString() => _text ?? (_bytes is null ? "(no key)" : Encoding.UTF8.GetString(_bytes));

    internal string? Text => _text;

    internal byte[]? RawBytes => _bytes;

    internal static ArgumentException Missing() => new("A RedisKey must be a string or bytes; default(RedisKey) has neither.");
}
