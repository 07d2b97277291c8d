using VllmStack.Bench.MultiRound;

namespace VllmStack.Tests.Bench;

public sealed class DistributionTests
{
    private static readonly double[] OneToTen = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

    [Theory]
    [InlineData(0, 1)]
    [InlineData(50, 5.5)]
    [InlineData(90, 9.1)]
    [InlineData(99, 9.91)]
    [InlineData(100, 10)]
    public void Percentiles_interpolate_linearly_between_ranks(double percent, double expected) =>
        Assert.Equal(expected, Distribution.Percentile(OneToTen, percent), 9);

    [Fact]
    public void One_value_is_every_percentile() =>
        Assert.Equal(new Distribution(1, 7, 7, 7, 7, 7), Distribution.Of([7]));

    [Fact]
    public void Of_sorts_its_input_and_reports_mean_and_max()
    {
        var d = Distribution.Of([10, 3, 1, 8, 2, 9, 4, 7, 5, 6]);
        Assert.Equal(10, d.Count);
        Assert.Equal(5.5, d.Mean, 9);
        Assert.Equal(5.5, d.P50, 9);
        Assert.Equal(9.1, d.P90, 9);
        Assert.Equal(9.91, d.P99, 9);
        Assert.Equal(10, d.Max);
    }

    [Fact]
    public void Nothing_measured_is_empty_not_NaN()
    {
        Assert.Same(Distribution.Empty, Distribution.Of([]));
        Assert.Equal(0, Distribution.Empty.Count);
        Assert.Throws<ArgumentOutOfRangeException>(() => Distribution.Percentile([], 50));
    }
}
