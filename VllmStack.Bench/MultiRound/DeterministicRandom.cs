namespace VllmStack.Bench.MultiRound;

/// <summary>
/// SplitMix64: a tiny generator whose sequence this project owns, so that a seed gives the same workload text on
/// every machine and .NET version (System.Random makes no such promise across versions).
/// </summary>
public sealed class DeterministicRandom
{
    private ulong _state;

    public DeterministicRandom(ulong seed) => _state = seed;

    /// <summary>
    /// A generator for one piece of the workload (a user's document, one question, …): the seed and the parts are
    /// mixed so that neighbouring parts give unrelated sequences.
    /// </summary>
    public static DeterministicRandom For(int seed, params ReadOnlySpan<long> parts)
    {
        var state = Mix((ulong)seed ^ 0x6A09E667F3BCC908UL);
        foreach (var part in parts)
        {
            state = Mix(state ^ (ulong)part);
        }
        return new DeterministicRandom(state);
    }

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>A value in [0, <paramref name="maxExclusive"/>); the modulo bias is negligible for the small ranges used here.</summary>
    public int Next(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        return (int)(NextUInt64() % (ulong)maxExclusive);
    }

    public int Next(int minInclusive, int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(minInclusive, maxExclusive);
        return minInclusive + Next(maxExclusive - minInclusive);
    }

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
