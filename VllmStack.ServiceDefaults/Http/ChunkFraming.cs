using System.Buffers.Binary;

namespace VllmStack.ServiceDefaults.Http;

/// <summary>
/// Several binary chunks in one HTTP body: per chunk a 4-byte big-endian length (-1 for a missing one), then its
/// bytes. Used between the cache server's pool and the engines that fetch from it. Keyed framing (for writes) puts
/// each chunk's 8-byte big-endian block hash before its length.
/// </summary>
public static class ChunkFraming
{
    public const string ContentType = "application/x-vllmstack-chunks";

    public static async Task WriteAsync(Stream destination, IReadOnlyList<byte[]?> chunks, CancellationToken cancellationToken)
    {
        var header = new byte[4];
        foreach (var chunk in chunks)
        {
            BinaryPrimitives.WriteInt32BigEndian(header, chunk?.Length ?? -1);
            await destination.WriteAsync(header, cancellationToken).ConfigureAwait(false);
            if (chunk is not null)
            {
                await destination.WriteAsync(chunk, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    public static async Task<List<byte[]?>> ReadAsync(Stream source, int count, CancellationToken cancellationToken)
    {
        var chunks = new List<byte[]?>(count);
        var header = new byte[4];
        for (var i = 0; i < count; i++)
        {
            await source.ReadExactlyAsync(header, cancellationToken).ConfigureAwait(false);
            var length = BinaryPrimitives.ReadInt32BigEndian(header);
            if (length < 0)
            {
                chunks.Add(null);
                continue;
            }
            var chunk = new byte[length];
            await source.ReadExactlyAsync(chunk, cancellationToken).ConfigureAwait(false);
            chunks.Add(chunk);
        }
        return chunks;
    }

    public static async Task WriteKeyedAsync(Stream destination, IReadOnlyList<(ulong Hash, ReadOnlyMemory<byte> Chunk)> chunks, CancellationToken cancellationToken)
    {
        var header = new byte[12];
        foreach (var (hash, chunk) in chunks)
        {
            BinaryPrimitives.WriteUInt64BigEndian(header, hash);
            BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(8), chunk.Length);
            await destination.WriteAsync(header, cancellationToken).ConfigureAwait(false);
            await destination.WriteAsync(chunk, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Keyed chunks up to the end of the stream. Throws <see cref="InvalidDataException"/> for a truncated body, a
    /// negative length, more than <paramref name="maxChunks"/> chunks or a chunk over <paramref name="maxChunkBytes"/>.
    /// </summary>
    public static async Task<List<(ulong Hash, byte[] Chunk)>> ReadKeyedAsync(Stream source, int maxChunks, long maxChunkBytes, CancellationToken cancellationToken)
    {
        var chunks = new List<(ulong, byte[])>();
        var header = new byte[12];
        while (true)
        {
            var read = await source.ReadAtLeastAsync(header, header.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return chunks;
            }
            if (read < header.Length)
            {
                throw new InvalidDataException($"Chunk {chunks.Count + 1} is cut short: its 12-byte header has {read} bytes.");
            }
            if (chunks.Count == maxChunks)
            {
                throw new InvalidDataException($"At most {maxChunks} chunks per request.");
            }
            var hash = BinaryPrimitives.ReadUInt64BigEndian(header);
            var length = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(8));
            if (length < 0 || length > maxChunkBytes)
            {
                throw new InvalidDataException($"Chunk {chunks.Count + 1} claims {length} bytes; a chunk has 0 to {maxChunkBytes}.");
            }
            var chunk = new byte[length];
            if (await source.ReadAtLeastAsync(chunk, length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false) < length)
            {
                throw new InvalidDataException($"Chunk {chunks.Count + 1} is cut short: fewer than its {length} bytes arrived.");
            }
            chunks.Add((hash, chunk));
        }
    }
}
