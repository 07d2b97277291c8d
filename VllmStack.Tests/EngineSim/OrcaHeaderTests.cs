using VllmStack.EngineSim.Api;
using VllmStack.EngineSim.Engine;

namespace VllmStack.Tests.EngineSim;

/// <summary>ORCA load reports, byte for byte as vLLM's orca_metrics.py writes them (Python's float repr included).</summary>
public sealed class OrcaHeaderTests
{
    [Theory]
    [InlineData(0.0, "0.0")]
    [InlineData(3.0, "3.0")]
    [InlineData(0.25, "0.25")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(0.00001, "1e-05")]
    [InlineData(0.123456789, "0.123456789")]
    public void Floats_print_as_python_prints_them(double value, string expected) =>
        Assert.Equal(expected, RouterSignals.PythonFloat(value));

    [Fact]
    public void Text_and_json_reports_name_the_waiting_queue_then_the_kv_cache_usage()
    {
        var snapshot = new SchedulerSnapshot(Running: 4, Waiting: 2, KvCacheUsage: 0.375, UsedBlocks: 3, CachedBlocks: 1, Sleeping: false, [], []);
        Assert.Equal("TEXT named_metrics.num_requests_waiting=2.0, named_metrics.kv_cache_usage_perc=0.375", RouterSignals.OrcaHeader("text", snapshot));
        Assert.Equal("JSON {\"named_metrics\": {\"num_requests_waiting\": 2.0, \"kv_cache_usage_perc\": 0.375}}", RouterSignals.OrcaHeader("JSON", snapshot));
        Assert.Null(RouterSignals.OrcaHeader("PROTO", snapshot));
    }
}
