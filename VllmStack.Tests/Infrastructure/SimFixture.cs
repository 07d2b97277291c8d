namespace VllmStack.Tests.Infrastructure;

/// <summary>One EngineSim process shared by the tests of a class; started before them, killed after them.</summary>
public abstract class SimFixture : IAsyncLifetime
{
    private EngineSimProcess? _sim;

    public EngineSimProcess Sim => _sim ?? throw new InvalidOperationException("The simulator has not started.");

    protected abstract IEnumerable<string> Args { get; }

    protected virtual IDictionary<string, string>? Environment => null;

    public async Task InitializeAsync() => _sim = await EngineSimProcess.StartAsync(Args, Environment);

    public virtual async Task DisposeAsync()
    {
        if (_sim is not null)
        {
            await _sim.DisposeAsync();
        }
    }
}

/// <summary>Echo output and a few-millisecond latency: answers are predictable, tests stay quick.</summary>
public sealed class EchoSimFixture : SimFixture
{
    public const string RuntimeLora = "true";

    /// <summary>Real adapter directories: a missing one fails to load, as in vLLM.</summary>
    public LoraAdapterFiles Adapters { get; } = new();

    protected override IEnumerable<string> Args =>
    [
        "--latency-preset", "fast", "--output-mode", "echo", "--max-model-len", "2048", "--num-gpu-blocks", "1024",
        "--enable-lora", "--max-loras", "2", "--lora-modules", $"sql-adapter={Adapters.Create("sql")}", "--enable-prompt-tokens-details",
    ];

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Adapters.Dispose();
    }

    protected override IDictionary<string, string>? Environment => new Dictionary<string, string> { ["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = RuntimeLora };
}
