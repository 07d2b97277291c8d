using System.Diagnostics;
using System.Globalization;
using VllmStack.EngineSim.Configuration;
using VllmStack.ServiceDefaults.Metrics;

namespace VllmStack.EngineSim.Metrics;

/// <summary>
/// The labels of <c>vllm:cache_config_info</c>: vLLM 0.11 turns every field of its <c>CacheConfig</c> into a label
/// (<c>CacheConfig.metrics_info()</c>: each value through Python's <c>str()</c>, so <c>True</c>, <c>None</c>, <c>0.9</c>)
/// plus <c>engine</c>. The field set is the one a 0.11.0 server reports (vllm-project/vllm issue 28924); fields the
/// simulator has a flag for carry the flag's value, the others the value <c>vllm serve</c> reports without flags.
/// </summary>
internal static class CacheConfigInfo
{
    private const double GiB = 1 << 30;

    public static TagList Labels(EngineOptions options) =>
    [
        new("block_size", options.BlockSize.ToString(CultureInfo.InvariantCulture)),
        new("cache_dtype", options.KvCacheDtype),
        new("calculate_kv_scales", "False"),
        new("cpu_kvcache_space_bytes", "None"),
        new("cpu_offload_gb", "0.0"),
        new("enable_prefix_caching", options.EnablePrefixCaching ? "True" : "False"),
        new("engine", "0"),
        new("gpu_memory_utilization", PythonFloat.Repr(options.GpuMemoryUtilization)),
        new("is_attention_free", "False"),
        new("kv_cache_memory_bytes", "None"),
        new("kv_sharing_fast_prefill", "False"),
        new("mamba_cache_dtype", "auto"),
        new("mamba_page_size_padded", "None"),
        new("mamba_ssm_cache_dtype", "auto"),
        new("num_cpu_blocks", "None"),
        new("num_gpu_blocks", options.NumGpuBlocks.ToString(CultureInfo.InvariantCulture)),
        new("num_gpu_blocks_override", options.NumGpuBlocksOverridden ? options.NumGpuBlocks.ToString(CultureInfo.InvariantCulture) : "None"),
        new("prefix_caching_hash_algo", "sha256"),
        new("sliding_window", "None"),
        new("swap_space", PythonFloat.Repr(options.SwapSpaceGiB)),
        new("swap_space_bytes", PythonFloat.Repr(options.SwapSpaceGiB * GiB)),
    ];
}
