namespace VllmStack.Tests.Infrastructure;

/// <summary>
/// PEFT LoRA adapters on disk, as vLLM reads them: a directory with <c>adapter_config.json</c> and a weights file
/// (empty: nobody reads it). All under one temporary folder, deleted on dispose.
/// </summary>
public sealed class LoraAdapterFiles : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("vllmstack-lora-").FullName;

    /// <summary>Writes an adapter at <c>Root/relativePath</c> and returns its absolute path.</summary>
    public string Create(string relativePath, int rank = 8)
    {
        var directory = Path.Combine(Root, relativePath);
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "adapter_config.json"),
            $$"""{"peft_type": "LORA", "r": {{rank}}, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"], "bias": "none"}""");
        File.WriteAllBytes(Path.Combine(directory, "adapter_model.safetensors"), []);
        return directory;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Left behind in the temp folder; nothing depends on it.
        }
    }
}
