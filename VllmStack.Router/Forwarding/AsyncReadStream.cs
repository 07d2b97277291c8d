namespace VllmStack.Router.Forwarding;

/// <summary>
/// A body the router reads forward only and asynchronously (request bodies going to an engine, engine bodies going to
/// the client): what <see cref="Stream"/> asks beyond <see cref="Stream.ReadAsync(Memory{byte}, CancellationToken)"/>,
/// once. Synchronous reads, writes and seeking are not supported.
/// </summary>
public abstract class AsyncReadStream : Stream
{
    /// <summary>What the body is, for the error of a synchronous read ("The request body").</summary>
    protected abstract string BodyName { get; }

    /// <summary>Bytes read so far, when the body counts them; otherwise <see cref="NotSupportedException"/>.</summary>
    protected virtual long BytesRead => throw new NotSupportedException();

    public abstract override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default);

    public sealed override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public sealed override int Read(byte[] buffer, int offset, int count) =>
        throw new NotSupportedException($"{BodyName} is read asynchronously.");

    public sealed override bool CanRead => true;

    public sealed override bool CanSeek => false;

    public sealed override bool CanWrite => false;

    public sealed override long Length => throw new NotSupportedException();

    public sealed override long Position
    {
        get => BytesRead;
        set => throw new NotSupportedException();
    }

    public sealed override void Flush()
    {
    }

    public sealed override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public sealed override void SetLength(long value) => throw new NotSupportedException();

    public sealed override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
