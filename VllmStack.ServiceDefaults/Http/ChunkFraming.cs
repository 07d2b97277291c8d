using System.Buffers.Binary;

namespace VllmStack.ServiceDefaults.Http;

/// <summary>
/// Several binary chunks in one HTTP body: per chunk a 4-byte big-endian length (-1 for a missing one), then its
/// bytes. Used between the cache server's pool and the engines that fetch from it.
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
}
