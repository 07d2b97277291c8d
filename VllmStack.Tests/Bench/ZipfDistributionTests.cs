using VllmStack.Bench.MultiRound;
using VllmStack.Bench.Scenarios;

namespace VllmStack.Tests.Bench;

public sealed class ZipfDistributionTests
{
    [Fact]
    public void Shares_follow_one_over_rank_and_sum_to_one()
    {
        var zipf = new ZipfDistribution(50, 1.0);
        var harmonic = Enumerable.Range(1, 50).Sum(k => 1.0 / k);
        Assert.Equal(1 / harmonic, zipf.Share(0), 9);
        Assert.Equal(1 / (10 * harmonic), zipf.Share(9), 9);
        Assert.Equal(1, Enumerable.Range(0, 50).Sum(zipf.Share), 9);
    }

    [Fact]
    public void Samples_are_seeded_and_as_frequent_as_their_shares()
    {
        var zipf = new ZipfDistribution(50, 1.0);
        var counts = new int[50];
        const int Draws = 200_000;
        for (var i = 0; i < Draws; i++)
        {
            counts[zipf.Sample(DeterministicRandom.For(17, i))]++;
        }
        foreach (var k in new[] { 0, 1, 4, 49 })
        {
            Assert.InRange(counts[k] / (double)Draws, zipf.Share(k) * 0.9, zipf.Share(k) * 1.1);
        }
        Assert.Equal(zipf.Sample(DeterministicRandom.For(17, 3)), zipf.Sample(DeterministicRandom.For(17, 3)));
    }

    [Fact]
    public void An_exponent_of_zero_is_uniform()
    {
        var zipf = new ZipfDistribution(4, 0);
        Assert.All(Enumerable.Range(0, 4), k => Assert.Equal(0.25, zipf.Share(k), 9));
    }
}
