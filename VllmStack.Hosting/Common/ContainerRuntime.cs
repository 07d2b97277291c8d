namespace VllmStack.Hosting.Common;

/// <summary>
/// Whether a container runtime with a working engine is here (<c>docker info</c> or <c>podman info</c> succeeds). A
/// client without an engine — as on machines with the docker CLI and no daemon — does not count: Aspire's container
/// resources would wait for it forever.
/// </summary>
public static class ContainerRuntime
{
    private static readonly Lazy<string?> Found = new(() =>
        new[] { "docker", "podman" }.Select(Executables.Which)
            .FirstOrDefault(path => path is not null && Executables.Output(path, ["info"], null, TimeSpan.FromSeconds(10)) is not null));

    /// <summary>The runtime's path, or null; probed once per process.</summary>
    public static string? Find() => Found.Value;

    /// <summary>True when the runtime is there and <c>nvidia-smi -L</c> lists a GPU: vLLM's container can serve.</summary>
    public static bool HasNvidiaGpu() =>
        Find() is not null && Executables.Which("nvidia-smi") is { } smi && Executables.Output(smi, ["-L"], null, TimeSpan.FromSeconds(10)) is { Length: > 0 };
}
