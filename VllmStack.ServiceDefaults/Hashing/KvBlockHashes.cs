namespace VllmStack.ServiceDefaults.Hashing;

/// <summary>
/// The identity of KV-cache blocks, shared by engines, the cache server and the router: a chain of XXH64 hashes over
/// full blocks of token ids, rooted in the base model (and the LoRA adapter, whose KV differs). Two requests share
/// a block exactly when they share every token up to and including it.
/// </summary>
public static class KvBlockHashes
{
    public static ulong Root(string baseModel, string? lora = null)
    {
        var root = StableHash64.HashString(baseModel);
        return lora is null ? root : StableHash64.HashString(lora, root);
    }

    /// <summary>Hashes of every full block of <paramref name="tokens"/>, appended to <paramref name="hashes"/> from where it stops.</summary>
    public static void Extend(List<ulong> hashes, ulong root, ReadOnlySpan<int> tokens, int blockSize)
    {
        var full = tokens.Length / blockSize;
        for (var i = hashes.Count; i < full; i++)
        {
            var parent = i == 0 ? root : hashes[i - 1];
            hashes.Add(StableHash64.HashTokens(parent, tokens.Slice(i * blockSize, blockSize)));
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
