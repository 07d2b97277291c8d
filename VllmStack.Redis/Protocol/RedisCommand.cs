using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace VllmStack.Redis.Protocol;

/// <summary>
/// One command serialised as a RESP2 array of bulk strings into a buffer rented from the shared pool. The caller
/// builds it (in parallel with other callers), the connection's writer loop sends it and returns the buffer.
/// </summary>
internal sealed class RedisCommand
{
    private const int InitialSize = 256;

    private readonly int _declaredArguments;
    private byte[]? _buffer;
    private int _length;
    private int _arguments;

    /// <summary>Starts <c>*N</c> for the name plus <paramref name="argumentCount"/> arguments and writes the name.</summary>
    public RedisCommand(string name, int argumentCount)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentOutOfRangeException.ThrowIfNegative(argumentCount);
        Name = name;
        _declaredArguments = argumentCount;
        _buffer = ArrayPool<byte>.Shared.Rent(InitialSize);
        WriteByte((byte)'*');
        WriteInteger(argumentCount + 1);
        WriteCrlf();
        WriteBulk(name);
    }

    /// <summary>The command name, for error messages (arguments are never included: they may be secrets or megabytes).</summary>
    public string Name { get; }

    public int Length => _length;

    /// <summary>The serialised bytes; valid until <see cref="Release"/>.</summary>
    public ArraySegment<byte> Payload =>
        new(_buffer ?? throw new ObjectDisposedException(nameof(RedisCommand), $"{Name} was already sent or released."), 0, _length);

    public RedisCommand Add(ReadOnlySpan<byte> value)
    {
        CountArgument();
        WriteByte((byte)'$');
        WriteInteger(value.Length);
        WriteCrlf();
        value.CopyTo(Reserve(value.Length));
        _length += value.Length;
        WriteCrlf();
        return this;
    }

    public RedisCommand Add(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        CountArgument();
        WriteBulk(value);
        return this;
    }

    public RedisCommand Add(RedisKey key)
    {
        if (key.Text is { } text)
        {
            return Add(text);
        }
        return Add((key.RawBytes ?? throw RedisKey.Missing()).AsSpan());
    }

    public RedisCommand Add(long value)
    {
        Span<byte> digits = stackalloc byte[20];
        Utf8Formatter.TryFormat(value, digits, out var written);
        return Add(digits[..written]);
    }

    /// <summary>Scores and other floats in the form Redis and Garnet parse: shortest round-trip, <c>+inf</c>/<c>-inf</c>.</summary>
    public RedisCommand Add(double value)
    {
        if (double.IsNaN(value))
        {
            throw new ArgumentException($"{Name}: NaN cannot be sent to Redis.", nameof(value));
        }
        if (double.IsInfinity(value))
        {
            return Add(value > 0 ? "+inf"u8 : "-inf"u8);
        }
        Span<byte> text = stackalloc byte[32];
        if (!value.TryFormat(text, out var written, "R", CultureInfo.InvariantCulture))
        {
            throw new ArgumentException($"{Name}: {value} could not be formatted.", nameof(value));
        }
        return Add(text[..written]);
    }

    /// <summary>Arguments of <see cref="RedisClient.ExecuteAsync(string, object[])"/>: text, bytes, keys and numbers.</summary>
    public RedisCommand AddObject(object? value) => value switch
    {
        null => throw new ArgumentNullException(nameof(value), $"{Name}: argument {_arguments + 1} is null."),
        string text => Add(text),
        byte[] bytes => Add(bytes.AsSpan()),
        ReadOnlyMemory<byte> memory => Add(memory.Span),
        Memory<byte> memory => Add(memory.Span),
        ArraySegment<byte> segment => Add(segment.AsSpan()),
        RedisKey key => Add(key),
        int number => Add(number),
        long number => Add(number),
        short number => Add(number),
        uint number => Add(number),
        ulong number => AddUnsigned(number),
        double number => Add(number),
        float number => Add(number),
        decimal number => Add(number.ToString(CultureInfo.InvariantCulture)),
        _ => throw new ArgumentException(
            $"{Name}: argument {_arguments + 1} is a {value.GetType().Name}; use string, byte[], ReadOnlyMemory<byte>, RedisKey or a number.",
            nameof(value)),
    };

    /// <summary>Checks that exactly the declared arguments were added; a mismatch would desynchronise the server.</summary>
    public RedisCommand Complete()
    {
        if (_arguments != _declaredArguments)
        {
            Release();
            throw new InvalidOperationException($"{Name} was declared with {_declaredArguments} arguments but {_arguments} were added.");
        }
        return this;
    }

    /// <summary>Returns the buffer to the pool; safe to call more than once (only the first call returns it).</summary>
    public void Release()
    {
        var buffer = Interlocked.Exchange(ref _buffer, null);
        if (buffer is not null)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private RedisCommand AddUnsigned(ulong value)
    {
        Span<byte> digits = stackalloc byte[20];
        Utf8Formatter.TryFormat(value, digits, out var written);
        return Add(digits[..written]);
    }

    private void CountArgument()
    {
        if (_arguments == _declaredArguments)
        {
            throw new InvalidOperationException($"{Name} was declared with {_declaredArguments} arguments; one more was added.");
        }
        _arguments++;
    }

    private void WriteBulk(string value)
    {
        var count = Encoding.UTF8.GetByteCount(value);
        WriteByte((byte)'$');
        WriteInteger(count);
        WriteCrlf();
        _length += Encoding.UTF8.GetBytes(value, Reserve(count));
        WriteCrlf();
    }

    private void WriteInteger(long value)
    {
        Utf8Formatter.TryFormat(value, Reserve(20), out var written);
        _length += written;
    }

    private void WriteByte(byte value)
    {
        Reserve(1)[0] = value;
        _length++;
    }

    private void WriteCrlf()
    {
        "\r\n"u8.CopyTo(Reserve(2));
        _length += 2;
    }

    /// <summary>Room for <paramref name="count"/> more bytes; grows straight to the needed size so a large value costs one copy.</summary>
    private Span<byte> Reserve(int count)
    {
        var buffer = _buffer ?? throw new ObjectDisposedException(nameof(RedisCommand), $"{Name} was already sent or released.");
        if (buffer.Length - _length < count)
        {
            var needed = (long)_length + count + 2 + 16; // the value's trailing CRLF, plus slack for the next header
            var size = (int)Math.Min(Array.MaxLength, Math.Max(needed, 2L * buffer.Length));
            var larger = ArrayPool<byte>.Shared.Rent(size);
            buffer.AsSpan(0, _length).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(buffer);
            _buffer = buffer = larger;
        }
        return buffer.AsSpan(_length, count);
    }
}
