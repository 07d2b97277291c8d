using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Orchestration;

namespace VllmStack.Hosting.Vllm;

/// <summary>How an engine runs on this machine, in order of preference.</summary>
public enum EngineMode
{
    /// <summary>The <c>vllm/vllm-openai</c> image with GPUs (a container runtime and an NVIDIA GPU are present).</summary>
    Container,

    /// <summary>A <c>vllm</c> executable on PATH.</summary>
    Executable,

    /// <summary>EngineSim with the same model name and options (no GPU path on this machine).</summary>
    Simulated,
}

/// <summary>Options of a vLLM engine, shared by every way it can run and by the Kubernetes publisher.</summary>
public sealed class VllmEngineOptions
{
    public int MaxNumSeqs { get; set; } = 256;

    public int? MaxModelLen { get; set; }

    public IList<string> LoraModules { get; } = [];

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

    public IList<string> ExtraArgs { get; } = [];

    /// <summary>Latency preset of the simulator when the engine is simulated.</summary>
    public string SimulatorPreset { get; set; } = "h100-8b";

    public bool EnableLora => LoraModules.Count > 0;
}

/// <summary>A vLLM engine (one or more replicas) serving one model; the mode is chosen when the app starts.</summary>
public sealed class VllmResource(string name, ParameterResource model, string engineSimProjectPath, string buildConfiguration) : Resource(name), IRunnableResource, IPreparedResource
{
    public string BuildConfiguration { get; } = buildConfiguration;

    public ParameterResource Model { get; } = model;

    public VllmEngineOptions Options { get; } = new();

    public string EngineSimProjectPath { get; } = engineSimProjectPath;

    /// <summary>The cache server the engine reports its KV blocks to (simulated engines; vLLM itself needs LMCache for this).</summary>
    public IResource? KvCacheServer { get; set; }

    /// <summary>Overrides detection (tests force the simulator even where a GPU path exists).</summary>
    public EngineMode? ForcedMode { get; set; }

    /// <summary>The key engines require on <c>/v1</c> (<c>VLLM_API_KEY</c>); routers to these engines send it.</summary>
    public ParameterResource? ApiKey { get; set; }

    public EngineMode? Mode { get; private set; }

    public string KindDescription => Mode switch
    {
        EngineMode.Container => $"vLLM container vllm/vllm-openai:{Options.ImageTag} ({Options.GpuCount} GPU)",
        EngineMode.Executable => "vLLM executable (vllm serve)",
        EngineMode.Simulated => "EngineSim (simulated: no GPU path on this machine)",
        _ => "vLLM engine",
    };

    /// <summary>Picks the mode once: container with GPUs, else the vllm executable, else the simulator.</summary>
    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        if (Mode is not null)
        {
            return;
        }
        if (ForcedMode is { } forced)
        {
            Mode = forced;
            return;
        }
        var gpu = await ContainerRuntime.FindAsync().ConfigureAwait(false) is not null
            && Executables.Which("nvidia-smi") is { } smi
            && await Executables.OutputAsync(smi, ["-L"], null, TimeSpan.FromSeconds(5), cancellationToken).ConfigureAwait(false) is not null;
        Mode = gpu ? EngineMode.Container : Executables.Which("vllm") is not null ? EngineMode.Executable : EngineMode.Simulated;
    }

    /// <summary><c>vllm serve</c>'s arguments from the options (the simulator accepts the same ones).</summary>
    public IReadOnlyList<string> ServeArguments(ResourceRuntime runtime, string host, int port)
    {
        List<string> args = [runtime.ParameterValue(Model), "--host", host, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--max-num-seqs", Options.MaxNumSeqs.ToString(System.Globalization.CultureInfo.InvariantCulture)];
        if (Options.MaxModelLen is { } len)
        {
            args.AddRange(["--max-model-len", len.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        }
        if (Options.EnableLora)
        {
            args.Add("--enable-lora");
            args.Add("--lora-modules");
            args.AddRange(Options.LoraModules);
        }
        args.AddRange(Options.ExtraArgs);
        return args;
    }

    internal LaunchSpec Launch(ReplicaContext context)
    {
        var port = context.Port();
        var serve = ServeArguments(context.Runtime, "127.0.0.1", port);
        switch (Mode ?? throw new InvalidOperationException($"Engine '{Name}' has not been prepared."))
        {
            case EngineMode.Container:
                var container = ContainerRuntime.Find()!;
                var model = context.Runtime.ParameterValue(Model);
                List<string> run = ["run", "--rm", "--gpus", Options.GpuCount.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    "--ipc=host", "-p", $"127.0.0.1:{port}:8000", "-e", "HF_TOKEN", "-e", "VLLM_API_KEY", $"vllm/vllm-openai:{Options.ImageTag}", "--model", model];
                // The image's own entry point serves; it listens on 8000, so model, host and port (the first five) are given above.
                // "-e NAME" passes the variable on from this process's environment, so the key and token stay out of the command line.
                run.AddRange(serve.Skip(5));
                return new LaunchSpec(container, run, null, KindDescription);
            case EngineMode.Executable:
                return new LaunchSpec(Executables.Which("vllm")!, ["serve", .. serve], null, KindDescription);
            default:
                var dll = new ProjectResource(Name, EngineSimProjectPath, BuildConfiguration).AssemblyPath;
                if (!File.Exists(dll))
                {
                    throw new FileNotFoundException($"{dll} does not exist: build the solution first (dotnet build VllmStack.sln).", dll);
                }
                List<string> simulated = [dll, .. serve, "--latency-preset", Options.SimulatorPreset];
                if (KvCacheServer is not null && context.Runtime.Endpoints(KvCacheServer).FirstOrDefault() is { } cacheServer)
                {
                    simulated.AddRange(["--kv-cache-server", cacheServer.ToString(), "--kv-offload"]);
                }
                return new LaunchSpec("dotnet", simulated, null, KindDescription);
        }
    }
}
