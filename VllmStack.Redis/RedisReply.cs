using System.Globalization;
using System.Text;

namespace VllmStack.Redis;

/// <summary>The five RESP2 reply types.</summary>
public enum RedisReplyKind
{
    SimpleString,
    Error,
    Integer,
    BulkString,
    Array,
}

/// <summary>
/// One RESP2 reply. Bulk strings are kept as the exact bytes the server sent (binary safe); a null bulk string
/// or null array has <see cref="IsNull"/> set. Errors nested in arrays stay replies; a top-level error reply
/// is turned into a <see cref="RedisServerException"/> by the client.
/// </summary>
public sealed class RedisReply
{
    internal static readonly RedisReply Ok = new(RedisReplyKind.SimpleString, text: "OK");
    internal static readonly RedisReply NullBulk = new(RedisReplyKind.BulkString, isNull: true);
    internal static readonly RedisReply NullArray = new(RedisReplyKind.Array, isNull: true);
    internal static readonly RedisReply EmptyArray = new(RedisReplyKind.Array, elements: []);
    private static readonly RedisReply Zero = new(RedisReplyKind.Integer, integer: 0);
    private static readonly RedisReply One = new(RedisReplyKind.Integer, integer: 1);

    private readonly string? _text;
    private readonly long _integer;
    private readonly byte[]? _bytes;
    private readonly RedisReply[]? _elements;

    private RedisReply(RedisReplyKind kind, string? text = null, long integer = 0, byte[]? bytes = null, RedisReply[]? elements = null, bool isNull = false)
    {
        Kind = kind;
        _text = text;
        _integer = integer;
        _bytes = bytes;
        _elements = elements;
        IsNull = isNull;
    }

    public RedisReplyKind Kind { get; }

    /// <summary>A null bulk string (<c>$-1</c>) or a null array (<c>*-1</c>).</summary>
    public bool IsNull { get; }

    public bool IsError => Kind == RedisReplyKind.Error;

    /// <summary>The text of a simple string or an error reply.</summary>
    public string Text => Kind is RedisReplyKind.SimpleString or RedisReplyKind.Error ? _text! : throw WrongKind("a simple string or error");

    /// <summary>The value of an integer reply.</summary>
    public long Integer => Kind == RedisReplyKind.Integer ? _integer : throw WrongKind("an integer");

    /// <summary>The bytes of a bulk string; null for a null bulk string. The array is the reply's own (no copy).</summary>
    public byte[]? Bytes => Kind == RedisReplyKind.BulkString ? _bytes : throw WrongKind("a bulk string");

    /// <summary>The elements of an array reply; null for a null array.</summary>
    public IReadOnlyList<RedisReply>? Elements => Kind == RedisReplyKind.Array ? _elements : throw WrongKind("an array");

    public static RedisReply SimpleString(string text) => text == "OK" ? Ok : new(RedisReplyKind.SimpleString, text: text);

    public static RedisReply Error(string message) => new(RedisReplyKind.Error, text: message);

    public static RedisReply FromInteger(long value) => value switch
    {
        0 => Zero,
        1 => One,
        _ => new(RedisReplyKind.Integer, integer: value),
    };

    public static RedisReply BulkString(byte[]? bytes) => bytes is null ? NullBulk : new(RedisReplyKind.BulkString, bytes: bytes);

    public static RedisReply Array(RedisReply[]? elements) => elements switch
    {
        null => NullArray,
        [] => EmptyArray,
        _ => new(RedisReplyKind.Array, elements: elements),
    };

    /// <summary>
    /// The reply as text: simple strings as they are, bulk strings decoded as UTF-8, integers in invariant form;
    /// null for null replies. Arrays and errors have no single text and throw.
    /// </summary>
    public string? AsString() => Kind switch
    {
        RedisReplyKind.SimpleString => _text,
        RedisReplyKind.BulkString => _bytes is null ? null : Encoding.UTF8.GetString(_bytes),
        RedisReplyKind.Integer => _integer.ToString(CultureInfo.InvariantCulture),
        _ when IsNull => null,
        _ => throw WrongKind("a string"),
    };

    /// <summary>The reply as a number: integer replies, or simple/bulk strings holding a decimal integer.</summary>
    public long AsInt64()
    {
        if (Kind == RedisReplyKind.Integer)
        {
            return _integer;
        }
        var text = AsString();
        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new RedisProtocolException($"Expected an integer reply, got {Describe()}.");
    }

    /// <summary>The reply as bytes: bulk strings as they are, simple strings and integers encoded as UTF-8.</summary>
    public byte[]? AsBytes() => Kind switch
    {
        RedisReplyKind.BulkString => _bytes,
        RedisReplyKind.SimpleString or RedisReplyKind.Integer => Encoding.UTF8.GetBytes(AsString()!),
        _ when IsNull => null,
        _ => throw WrongKind("bytes"),
    };

    public override string ToString() => Describe();

    /// <summary>A short description for messages: kind plus a prefix of the content.</summary>
    internal string Describe() => Kind switch
    {
        _ when IsNull => $"null {KindName(Kind)}",
        RedisReplyKind.SimpleString => $"simple string \"{Truncate(_text!)}\"",
        RedisReplyKind.Error => $"error \"{Truncate(_text!)}\"",
        RedisReplyKind.Integer => $"integer {_integer.ToString(CultureInfo.InvariantCulture)}",
        RedisReplyKind.BulkString => $"bulk string of {_bytes!.Length} bytes",
        _ => $"array of {_elements!.Length} elements",
    };

    private RedisProtocolException WrongKind(string wanted) => new($"Expected {wanted} reply, got {Describe()}.");

    private static string KindName(RedisReplyKind kind) => kind == RedisReplyKind.Array ? "array" : "bulk string";

    private static string Truncate(string text) => text.Length <= 80 ? text : text[..80] + "…";
}
