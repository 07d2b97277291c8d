using VllmStack.Bench.MultiRound;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// Zipf's law over ranks 0 … n − 1: P(k) ∝ 1 / (k + 1)^s, the usual model of how popular items (adapters, models,
/// documents) are. Sampled by inverting the cumulative distribution with a <see cref="DeterministicRandom"/>, so that a
/// seed gives the same sequence everywhere.
/// </summary>
public sealed class ZipfDistribution
{
    private readonly double[] _cumulative;

    public ZipfDistribution(int n, double exponent)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegative(exponent);
        var weights = Enumerable.Range(1, n).Select(k => 1 / Math.Pow(k, exponent)).ToArray();
        var total = weights.Sum();
        _cumulative = new double[n];
        var sum = 0.0;
        for (var k = 0; k < n; k++)
        {
            sum += weights[k] / total;
            _cumulative[k] = sum;
        }
        _cumulative[^1] = 1;
    }

    /// <summary>The probability of rank <paramref name="k"/>.</summary>
    public double Share(int k) => _cumulative[k] - (k == 0 ? 0 : _cumulative[k - 1]);

    /// <summary>A rank drawn with these probabilities.</summary>
    public int Sample(DeterministicRandom random)
    {
        // 53 random bits: a uniform double in [0, 1).
        var u = (random.NextUInt64() >> 11) * (1.0 / (1UL << 53));
        var index = Array.BinarySearch(_cumulative, u);
        // An exact hit on a boundary belongs to the next rank ([c(k-1), c(k)) is rank k).
        return Math.Min(index >= 0 ? index + 1 : ~index, _cumulative.Length - 1);
    }
}
