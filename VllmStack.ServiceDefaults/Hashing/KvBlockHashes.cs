using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Text;

namespace VllmStack.ServiceDefaults.Hashing;

/// <summary>
/// The identity of KV-cache blocks, shared by engines, the cache server and the router: a chain of XXH64 hashes
/// (<see cref="XxHash64"/>) over full blocks of token ids, rooted in the base model (and the LoRA adapter, whose KV
/// differs). Two requests share a block exactly when they share every token up to and including it. Unlike
/// <see cref="string.GetHashCode()"/>, XXH64 is the same in every process and on every machine.
/// </summary>
public static class KvBlockHashes
{
    public static ulong Root(string baseModel, string? lora = null)
    {
        var root = Text(baseModel);
        return lora is null ? root : Text(lora, root);
    }

    /// <summary>
    /// XXH64 of <paramref name="tokens"/> as little-endian int32s, seeded with <paramref name="parent"/>: the key of
    /// the block that holds them after the block <paramref name="parent"/>.
    /// </summary>
    public static ulong Block(ulong parent, ReadOnlySpan<int> tokens)
    {
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("Block hashes are defined over little-endian int32s.");
        }
        return XxHash64.HashToUInt64(MemoryMarshal.AsBytes(tokens), unchecked((long)parent));
    }

    /// <summary>XXH64 of <paramref name="text"/>'s UTF-8 bytes, seeded with <paramref name="seed"/>.</summary>
    public static ulong Text(string text, ulong seed = 0) => XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(text), unchecked((long)seed));

    /// <summary>Hashes of every full block of <paramref name="tokens"/>, appended to <paramref name="hashes"/> from where it stops.</summary>
    public static void Extend(List<ulong> hashes, ulong root, ReadOnlySpan<int> tokens, int blockSize)
    {
        var full = tokens.Length / blockSize;
        for (var i = hashes.Count; i < full; i++)
        {
            var parent = i == 0 ? root : hashes[i - 1];
            hashes.Add(Block(parent, tokens.Slice(i * blockSize, blockSize)));
        }
    }

    public static List<ulong> Compute(ulong root, ReadOnlySpan<int> tokens, int blockSize)
    {
        var hashes = new List<ulong>(tokens.Length / blockSize);
        Extend(hashes, root, tokens, blockSize);
        return hashes;
    }

    /// <summary>Hashes travel as 16 hex digits: JSON numbers lose precision beyond 2^53.</summary>
    public static string Format(ulong hash) => hash.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);

    public static bool TryParse(string text, out ulong hash) =>
        ulong.TryParse(text, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out hash);
}
