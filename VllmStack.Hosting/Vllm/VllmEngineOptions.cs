namespace VllmStack.Hosting.Vllm;

/// <summary>How a vLLM engine runs on this machine, in order of preference.</summary>
public enum EngineMode
{
    /// <summary>The <c>vllm/vllm-openai</c> image with GPUs (a container engine and an NVIDIA GPU are present).</summary>
    Container,

    /// <summary>A <c>vllm</c> executable on PATH.</summary>
    Executable,

    /// <summary>EngineSim with the same model name and options (no GPU path on this machine).</summary>
    Simulated,
}

/// <summary>Options of a vLLM engine, shared by every way it can run and by the Kubernetes publisher.</summary>
public sealed class VllmEngineOptions
{
    /// <summary>vLLM's <c>--max-num-seqs</c>: sequences in one batch.</summary>
    public int MaxNumSeqs { get; set; } = 256;

    /// <summary>vLLM's <c>--max-model-len</c>; null: the model's own.</summary>
    public int? MaxModelLen { get; set; }

    /// <summary>
    /// vLLM's <c>--max-loras</c>: distinct adapters in one batch (and the adapter slots a router's LoRA manager fills); null:
    /// vLLM's default (1). Only with LoRA on, that is when the group declares adapters (<c>WithLoraAdapter</c>).
    /// </summary>
    public int? MaxLoras { get; set; }

    /// <summary>GPUs per replica (containers here, <c>nvidia.com/gpu</c> limits when published).</summary>
    public int GpuCount { get; set; } = 1;

    /// <summary>Tag of the <c>vllm/vllm-openai</c> image (containers here, Deployments when published).</summary>
    public string ImageTag { get; set; } = "latest";

    /// <summary>Published Deployments: CPU cores requested per replica.</summary>
    public int CpuCores { get; set; } = 4;

    /// <summary>Published Deployments: memory per replica (request and limit), beside the GPU's own.</summary>
    public int MemoryGiB { get; set; } = 32;

    /// <summary>Published Deployments: size of the shared Hugging Face cache volume the replicas load weights from.</summary>
    public int HuggingFaceCacheGiB { get; set; } = 100;

    /// <summary>Published Deployments: in-memory <c>/dev/shm</c> (PyTorch and NCCL share tensors through it).</summary>
    public int SharedMemoryGiB { get; set; } = 8;

    /// <summary>Published Deployments: how long model download and loading may take before the pod counts as failed.</summary>
    public TimeSpan StartupBudget { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>More <c>vllm serve</c> arguments, passed as they are.</summary>
    public IList<string> ExtraArgs { get; } = [];

    /// <summary>Latency preset of the simulator when the engine is simulated (EngineSim's <c>--latency-preset</c>).</summary>
    public string SimulatorPreset { get; set; } = "h100-8b";

    /// <summary>
    /// <c>vllm serve</c>'s options after the model, host and port (the simulator accepts the same ones); with
    /// <paramref name="lora"/>, LoRA on (<c>--enable-lora</c>, <c>--max-loras</c>) and <paramref name="loraModules"/>
    /// (<c>name=source</c>) loaded at start as <c>--lora-modules</c>, if any.
    /// </summary>
    public IEnumerable<string> ServeOptions(bool lora = false, IReadOnlyList<string>? loraModules = null)
    {
        yield return "--max-num-seqs";
        yield return MaxNumSeqs.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (MaxModelLen is { } length)
        {
            yield return "--max-model-len";
            yield return length.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        if (lora)
        {
            yield return "--enable-lora";
            if (MaxLoras is { } maxLoras)
            {
                yield return "--max-loras";
                yield return maxLoras.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            if (loraModules is { Count: > 0 })
            {
                yield return "--lora-modules";
                foreach (var module in loraModules)
                {
                    yield return module;
                }
            }
        }
        foreach (var arg in ExtraArgs)
        {
            yield return arg;
        }
    }
}
