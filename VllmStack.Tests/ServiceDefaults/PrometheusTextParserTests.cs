using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.Tests.ServiceDefaults;

public sealed class PrometheusTextParserTests
{
    [Fact]
    public void Parses_vllm_style_exposition_with_escapes_timestamps_and_special_values()
    {
        var samples = PrometheusTextParser.Parse(
            """
            # HELP vllm:num_requests_running Number of requests in model execution batches.
            # TYPE vllm:num_requests_running gauge
            vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-3.1-8B"} 3.0
            vllm:gpu_cache_usage_perc{model_name="m"} 0.25 1700000000000
            weird{path="a\\b \"c\"\nd",} +Inf
            plain NaN
            """);

        Assert.Equal(4, samples.Count);
        Assert.Equal(3, samples.Sum("vllm:num_requests_running", ("model_name", "meta-llama/Llama-3.1-8B")));
        Assert.Equal(0.25, samples[1].Value);
        Assert.Equal("a\\b \"c\"\nd", samples[2].Labels["path"]);
        Assert.True(double.IsPositiveInfinity(samples[2].Value));
        Assert.True(double.IsNaN(samples[3].Value));
    }

    [Theory]
    [InlineData("metric{label=\"unterminated} 1")]
    [InlineData("metric{label=value} 1")]
    [InlineData("metric notanumber")]
    public void Rejects_malformed_lines(string line) =>
        Assert.Throws<FormatException>(() => PrometheusTextParser.Parse(line));
}
