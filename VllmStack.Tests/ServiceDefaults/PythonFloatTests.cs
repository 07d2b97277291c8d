using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.Tests.ServiceDefaults;

/// <summary>Doubles as Python writes them; expected strings are Python 3.11's repr() and prometheus_client's floatToGoString.</summary>
public sealed class PythonFloatTests
{
    [Theory]
    [InlineData(1.0, "1.0", "1.0")]
    [InlineData(0.005, "0.005", "0.005")]
    [InlineData(2560.0, "2560.0", "2560.0")]
    [InlineData(1e-05, "1e-05", "1e-05")]
    [InlineData(0.0001, "0.0001", "0.0001")]
    [InlineData(1.5e-07, "1.5e-07", "1.5e-07")]
    [InlineData(1e16, "1e+16", "1e+16")]
    [InlineData(1e15, "1000000000000000.0", "1e+015")]
    [InlineData(1234567.0, "1234567.0", "1.234567e+06")]
    [InlineData(123456.0, "123456.0", "123456.0")]
    [InlineData(10000000.0, "10000000.0", "1e+07")]
    [InlineData(12345678901.5, "12345678901.5", "1.23456789015e+010")]
    [InlineData(4294967296.0, "4294967296.0", "4.294967296e+09")]
    [InlineData(1e22, "1e+22", "1e+22")]
    [InlineData(-1234567.0, "-1234567.0", "-1234567.0")]
    [InlineData(1.0 / 3, "0.3333333333333333", "0.3333333333333333")]
    [InlineData(0.65, "0.65", "0.65")]
    [InlineData(0.0, "0.0", "0.0")]
    [InlineData(-0.0, "-0.0", "-0.0")]
    public void Writes_repr_and_floatToGoString(double value, string repr, string goString)
    {
        Assert.Equal(repr, PythonFloat.Repr(value));
        Assert.Equal(goString, PythonFloat.GoString(value));
    }

    [Fact]
    public void Special_values_are_written_as_prometheus_client_writes_them()
    {
        Assert.Equal("+Inf", PythonFloat.GoString(double.PositiveInfinity));
        Assert.Equal("-Inf", PythonFloat.GoString(double.NegativeInfinity));
        Assert.Equal("NaN", PythonFloat.GoString(double.NaN));
    }
}
