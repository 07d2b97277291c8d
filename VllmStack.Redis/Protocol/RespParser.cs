using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace VllmStack.Redis.Protocol;

/// <summary>
/// Incremental RESP2 reply parser. It takes whatever bytes have arrived, keeps partial progress (open arrays, a
/// bulk string being filled) between calls, and never re-parses what it has consumed. A bulk string is read into
/// one array of exactly its length, allocated when its header arrives; the connection may also receive socket
/// data straight into that array (<see cref="BulkDestination"/>), so a large value is copied once at most.
/// </summary>
internal sealed class RespParser
{
    /// <summary>Redis's own default <c>proto-max-bulk-len</c>.</summary>
    public const int MaxBulkLength = 512 * 1024 * 1024;

    /// <summary>
    /// Headers, simple strings and errors are short; a longer line means the stream is not RESP. Half the
    /// connection's receive buffer, so an unfinished line never fills that buffer.
    /// </summary>
    public const int MaxLineLength = 32 * 1024;

    /// <summary>Caps the allocation a corrupted header could cause; no real reply comes close.</summary>
    public const int MaxArrayLength = 1 << 27;

    private readonly Stack<OpenArray> _openArrays = new();
    private byte[]? _bulk;
    private int _bulkFilled;

    /// <summary>True while the body of a bulk string is still missing bytes.</summary>
    public bool IsAwaitingBulkData => _bulk is not null && _bulkFilled < _bulk.Length;

    /// <summary>The part of the current bulk string still to be filled; receive into it, then call <see cref="BulkDataReceived"/>.</summary>
    public Memory<byte> BulkDestination => _bulk is null ? Memory<byte>.Empty : _bulk.AsMemory(_bulkFilled);

    public void BulkDataReceived(int count)
    {
        if (_bulk is null || count < 0 || _bulkFilled + count > _bulk.Length)
        {
            throw new InvalidOperationException("Bulk data received without a bulk string being read.");
        }
        _bulkFilled += count;
    }

    /// <summary>
    /// Consumes bytes from <paramref name="data"/> until one top-level reply is complete (true) or the data runs out
    /// (false). <paramref name="consumed"/> counts the bytes used either way; unconsumed bytes (an incomplete line)
    /// must be offered again, followed by more. Throws <see cref="RespProtocolException"/> on anything that is not RESP2.
    /// </summary>
    public bool TryParse(ReadOnlySpan<byte> data, out int consumed, [NotNullWhen(true)] out RedisReply? reply)
    {
        consumed = 0;
        while (true)
        {
            RedisReply value;
            if (_bulk is not null)
            {
                var missing = _bulk.Length - _bulkFilled;
                var available = Math.Min(missing, data.Length - consumed);
                data.Slice(consumed, available).CopyTo(_bulk.AsSpan(_bulkFilled));
                consumed += available;
                _bulkFilled += available;
                if (_bulkFilled < _bulk.Length || data.Length - consumed < 2)
                {
                    reply = null;
                    return false;
                }
                if (data[consumed] != (byte)'\r' || data[consumed + 1] != (byte)'\n')
                {
                    throw new RespProtocolException($"a bulk string of {_bulk.Length} bytes is not followed by CRLF");
                }
                consumed += 2;
                value = RedisReply.BulkString(_bulk);
                _bulk = null;
                _bulkFilled = 0;
            }
            else
            {
                var rest = data[consumed..];
                var newline = rest.IndexOf((byte)'\n');
                if (newline < 0)
                {
                    if (rest.Length > MaxLineLength)
                    {
                        throw new RespProtocolException($"no line end within {MaxLineLength} bytes");
                    }
                    reply = null;
                    return false;
                }
                if (newline < 2 || rest[newline - 1] != (byte)'\r')
                {
                    throw new RespProtocolException("a line does not end with CRLF or has no type byte");
                }
                var type = rest[0];
                var body = rest[1..(newline - 1)];
                consumed += newline + 1;
                switch (type)
                {
                    case (byte)'+':
                        value = RedisReply.SimpleString(Encoding.UTF8.GetString(body));
                        break;
                    case (byte)'-':
                        value = RedisReply.Error(Encoding.UTF8.GetString(body));
                        break;
                    case (byte)':':
                        value = RedisReply.FromInteger(ParseInteger(body, "integer"));
                        break;
                    case (byte)'$':
                        var length = ParseInteger(body, "bulk string length");
                        if (length == -1)
                        {
                            value = RedisReply.NullBulk;
                            break;
                        }
                        if (length is < 0 or > MaxBulkLength)
                        {
                            throw new RespProtocolException($"bulk string length {length} is outside 0..{MaxBulkLength}");
                        }
                        // Uninitialised: every byte is overwritten by the body before anyone sees the array.
                        _bulk = length == 0 ? [] : GC.AllocateUninitializedArray<byte>((int)length);
                        _bulkFilled = 0;
                        continue;
                    case (byte)'*':
                        var count = ParseInteger(body, "array length");
                        if (count is -1 or 0)
                        {
                            value = count == -1 ? RedisReply.NullArray : RedisReply.EmptyArray;
                            break;
                        }
                        if (count is < 0 or > MaxArrayLength)
                        {
                            throw new RespProtocolException($"array length {count} is outside 0..{MaxArrayLength}");
                        }
                        _openArrays.Push(new OpenArray(new RedisReply[count]));
                        continue;
                    default:
                        throw new RespProtocolException($"unknown reply type byte 0x{type:X2}");
                }
            }

            if (CompletesTopLevel(ref value))
            {
                reply = value;
                return true;
            }
        }
    }

    /// <summary>Puts a finished value into the innermost open array, closing arrays that fill up; true when nothing is left open.</summary>
    private bool CompletesTopLevel(ref RedisReply value)
    {
        while (_openArrays.TryPeek(out var open))
        {
            open.Items[open.Filled++] = value;
            if (open.Filled < open.Items.Length)
            {
                return false;
            }
            _openArrays.Pop();
            value = RedisReply.Array(open.Items);
        }
        return true;
    }

    private static long ParseInteger(ReadOnlySpan<byte> text, string what) =>
        Utf8Parser.TryParse(text, out long value, out var used) && used == text.Length
            ? value
            : throw new RespProtocolException($"{what} '{Encoding.ASCII.GetString(text[..Math.Min(text.Length, 32)])}' is not a number");

    private sealed class OpenArray(RedisReply[] items)
    {
        public RedisReply[] Items { get; } = items;

        public int Filled { get; set; }
    }
}

/// <summary>The byte stream is not RESP2; the connection that produced it cannot be used any more.</summary>
internal sealed class RespProtocolException(string message) : Exception("RESP protocol error: " + message);
