using System.Buffers;

namespace VllmStack.Router.Forwarding;

/// <summary>
/// A read-only view of the client's body that keeps a copy of every byte read through it, in pooled memory, up to
/// a limit: a parser can look ahead for the field routing needs, and what it consumed is sent on unchanged.
/// </summary>
public sealed class RecordingReadStream(Stream inner, long limit) : AsyncReadStream
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);

    public int RecordedLength { get; private set; }

    /// <summary>Hands the recorded bytes (from <see cref="ArrayPool{T}.Shared"/>) to the caller, who returns them.</summary>
    public byte[] DetachBuffer()
    {
        var buffer = _buffer;
        _buffer = [];
        return buffer;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(destination, cancellationToken).ConfigureAwait(false);
        Record(destination.Span[..read]);
        return read;
    }

    private void Record(ReadOnlySpan<byte> bytes)
    {
        if (RecordedLength + (long)bytes.Length > limit)
        {
            throw ClientRequestException.TooLarge(limit, "The part of the upload before its 'model' field");
        }
        if (RecordedLength + bytes.Length > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(limit, Math.Max((long)_buffer.Length * 2, RecordedLength + (long)bytes.Length)));
            _buffer.AsSpan(0, RecordedLength).CopyTo(bigger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        bytes.CopyTo(_buffer.AsSpan(RecordedLength));
        RecordedLength += bytes.Length;
    }

    protected override void Dispose(bool disposing)
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
        base.Dispose(disposing);
    }

    protected override string BodyName => "The client's body";

    protected override long BytesRead => RecordedLength;
}
