using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Generation;

namespace VllmStack.Tests.EngineSim;

public sealed class StopMatcherTests
{
    [Fact]
    public void Finds_the_earliest_stop_and_cuts_before_it_unless_asked_to_keep_it()
    {
        var text = "one two STOP three END";
        Assert.Equal((8, "STOP"), new StopMatcher(["END", "STOP"], false).Find(text, 0));
        Assert.Equal((12, "STOP"), new StopMatcher(["STOP"], true).Find(text, 0));
        Assert.Equal((text.Length, (string?)null), new StopMatcher(["nope"], false).Find(text, 0));
    }

    [Fact]
    public void Holds_back_a_tail_that_may_become_a_stop_string()
    {
        var matcher = new StopMatcher(["</answer>"], false);
        Assert.Equal(6, matcher.SafeLength("Hello </ans"));
        Assert.Equal(11, matcher.SafeLength("Hello world"));
    }
}

public sealed class EngineCommandLineTests
{
    [Fact]
    public void Accepts_a_vllm_serve_command_line()
    {
        var options = EngineCommandLine.Parse(
            "meta-llama/Llama-3.1-8B-Instruct", "--port", "8100", "--served-model-name", "llama", "llama-8b", "--max-model-len", "8192",
            "--max-num-seqs", "64", "--block-size", "32", "--num-gpu-blocks", "1000", "--enable-lora", "--max-loras", "2",
            "--lora-modules", "sql=/adapters/sql", "{\"name\":\"chat\",\"path\":\"/a/chat\",\"base_model_name\":\"llama\"}",
            "--tensor-parallel-size", "1", "--gpu-memory-utilization", "0.9", "--trust-remote-code", "--seed", "7");

        Assert.Equal("meta-llama/Llama-3.1-8B-Instruct", options.Model);
        Assert.Equal(["llama", "llama-8b"], options.ServedModelNames);
        Assert.Equal("llama", options.PrimaryModelName);
        Assert.Equal((8100, 8192, 64, 32, 1000, 2, 7), (options.Port, options.MaxModelLen, options.MaxNumSeqs, options.BlockSize, options.NumGpuBlocks, options.MaxLoras, options.Seed));
        Assert.Equal([new LoraModule("sql", "/adapters/sql", null), new LoraModule("chat", "/a/chat", "llama")], options.LoraModules);
        Assert.True(options.EnablePrefixCaching);
        Assert.Empty(options.Validate());
    }

    [Fact]
    public void Presets_set_the_latency_model_and_flags_override_it()
    {
        var instant = EngineCommandLine.Parse("m", "--latency-preset", "instant");
        Assert.True(instant.Latency.IsInstant);
        var tuned = EngineCommandLine.Parse("--model", "m", "--latency-preset", "h100-8b", "--inter-token-latency-ms", "5", "--no-enable-prefix-caching");
        Assert.Equal(LatencyProfile.H100Llama8B with { InterTokenLatencyMs = 5 }, tuned.Latency);
        Assert.False(tuned.EnablePrefixCaching);
    }

    [Fact]
    public void Load_factor_grows_linearly_to_the_factor_at_max_num_seqs()
    {
        var profile = LatencyProfile.H100Llama8B;
        Assert.Equal(1, profile.LoadFactor(1, 256));
        Assert.Equal(profile.TimeFactorUnderLoad, profile.LoadFactor(256, 256), 6);
        Assert.Equal(1 + (profile.TimeFactorUnderLoad - 1) / 2, profile.LoadFactor(129, 257), 6);
    }

    [Theory]
    [InlineData("--latency-preset", "gpu-of-the-future")]
    [InlineData("--lora-modules", "no-equals-sign")]
    [InlineData("--failure-types", "meteor_strike")]
    public void Rejects_bad_values_with_a_message(string flag, string value) =>
        Assert.Throws<FormatException>(() => EngineCommandLine.Parse("m", flag, value));

    [Fact]
    public void Validation_explains_impossible_settings()
    {
        var options = EngineCommandLine.Parse("m", "--num-gpu-blocks", "10", "--max-model-len", "4096", "--lora-modules", "a=b");
        var problems = string.Join("\n", options.Validate());
        Assert.Contains("cannot hold one sequence", problems);
        Assert.Contains("--lora-modules needs --enable-lora", problems);
    }
}
