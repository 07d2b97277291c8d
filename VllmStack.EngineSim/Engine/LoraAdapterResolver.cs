using System.Text.Json;
using System.Text.RegularExpressions;
using VllmStack.EngineSim.Configuration;

namespace VllmStack.EngineSim.Engine;

/// <summary>Why an adapter did not load: vLLM tells a missing adapter (404) from any other failure.</summary>
public enum LoraLoadFailure
{
    /// <summary>No <c>adapter_config.json</c> where the path leads (a <c>FileNotFoundError</c> in vLLM's worker).</summary>
    NotFound,

    /// <summary>Found but unusable: LoRA disabled, unreadable or invalid config, rank too high, no weights.</summary>
    Invalid,
}

/// <summary>A failed load and the worker's own words for it (before the engine's "Call to add_lora method failed: ").</summary>
public sealed record LoraLoadError(LoraLoadFailure Failure, string Message);

/// <summary>
/// Checks an adapter as vLLM 0.11's worker does before it serves one (<c>vllm/lora/worker_manager.py</c>
/// <c>_load_adapter</c>): the path resolves as <c>vllm/lora/utils.py</c> <c>get_adapter_absolute_path</c> resolves it
/// (absolute paths as they are, <c>~</c> expanded, an existing relative path made absolute, anything else tried as a
/// Hugging Face repository id); <c>adapter_config.json</c> must be there (else "No adapter found", a 404) and be
/// PEFT's (<c>r</c>, <c>lora_alpha</c>, <c>target_modules</c>), with <c>r</c> at most <c>--max-lora-rank</c>
/// (<c>PEFTHelper.validate_legal</c>); and weights must sit beside it (<c>adapter_model.safetensors</c>, <c>.bin</c> or
/// <c>.pt</c>, <c>LoRAModel.from_local_checkpoint</c>). Their content is not read.
/// </summary>
/// <remarks>
/// There is no hub here. With <see cref="EngineOptions.LoraHubDirectory"/> a repository id <c>org/name</c> is looked up
/// as <c>DIR/org/name</c>, so a test can have ids that exist and ids that do not; without it every well-formed id
/// resolves, as if the download worked (its config is then not checked).
/// </remarks>
public sealed partial class LoraAdapterResolver(EngineOptions options)
{
    private static readonly string[] WeightFiles = ["adapter_model.safetensors", "adapter_model.bin", "adapter_model.pt"];

    /// <summary>The PEFTHelper fields without defaults, in their declaration order.</summary>
    private static readonly string[] RequiredConfigFields = ["r", "lora_alpha", "target_modules"];

    /// <summary>Null when the adapter can be served.</summary>
    public LoraLoadError? Check(string name, string path)
    {
        if (!options.EnableLora)
        {
            return new(LoraLoadFailure.Invalid, "LoRA is not enabled.");
        }
        if (Resolve(path) is not { } directory)
        {
            return null;
        }
        var configPath = Path.Combine(directory, "adapter_config.json");
        if (File.Exists(directory))
        {
            return new(LoraLoadFailure.Invalid, $"[Errno 20] Not a directory: '{configPath}'");
        }
        if (!File.Exists(configPath))
        {
            return new(LoraLoadFailure.NotFound, $"Loading lora {name} failed: No adapter found for {directory}");
        }
        JsonElement config;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(configPath));
            config = document.RootElement.Clone();
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            return new(LoraLoadFailure.Invalid, $"{configPath} is not a readable JSON file: {e.Message}");
        }
        if (config.ValueKind != JsonValueKind.Object)
        {
            return new(LoraLoadFailure.Invalid, $"{configPath} does not hold a JSON object.");
        }
        string[] missing = [.. RequiredConfigFields.Where(field => !config.TryGetProperty(field, out _))];
        if (missing.Length > 0)
        {
            return new(LoraLoadFailure.Invalid, MissingArguments(missing));
        }
        if (config.GetProperty("r") is not { ValueKind: JsonValueKind.Number } rank || !rank.TryGetInt32(out var r))
        {
            return new(LoraLoadFailure.Invalid, $"'r' in {configPath} is not an integer.");
        }
        if (r > options.MaxLoraRank)
        {
            return new(LoraLoadFailure.Invalid, $"LoRA rank {r} is greater than max_lora_rank {options.MaxLoraRank}.");
        }
        if (!WeightFiles.Any(file => File.Exists(Path.Combine(directory, file))))
        {
            return new(LoraLoadFailure.Invalid, $"{directory} doesn't contain tensors");
        }
        return null;
    }

    /// <summary>The directory to read, or null for a repository id that resolves without a simulated hub.</summary>
    private string? Resolve(string path)
    {
        if (Path.IsPathRooted(path))
        {
            return path;
        }
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
        {
            return Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + path[1..];
        }
        if (Directory.Exists(path) || File.Exists(path))
        {
            return Path.GetFullPath(path);
        }
        if (!RepoId().IsMatch(path) || path.Contains("--", StringComparison.Ordinal) || path.Contains("..", StringComparison.Ordinal))
        {
            // huggingface_hub rejects the id; vLLM then reads the path as given, and finds nothing there.
            return path;
        }
        if (options.LoraHubDirectory is not { } hub)
        {
            return null;
        }
        var snapshot = Path.Combine(hub, path);
        // A failed download leaves vLLM with the path as given, where nothing is found.
        return Directory.Exists(snapshot) ? snapshot : path;
    }

    /// <summary>Python's own words when a dataclass is built without required fields.</summary>
    private static string MissingArguments(string[] names)
    {
        var quoted = names.Select(n => $"'{n}'").ToArray();
        var list = quoted.Length switch
        {
            1 => quoted[0],
            2 => $"{quoted[0]} and {quoted[1]}",
            _ => string.Join(", ", quoted[..^1]) + ", and " + quoted[^1],
        };
        return $"PEFTHelper.__init__() missing {names.Length} required positional argument{(names.Length == 1 ? "" : "s")}: {list}";
    }

    /// <summary>A Hugging Face repository id: a name, or namespace/name, of letters, digits, '-', '_' and '.'.</summary>
    [GeneratedRegex(@"^(?![-.])[\w.-]{1,96}(?<![-.])(/(?![-.])[\w.-]{1,96}(?<![-.]))?$")]
    private static partial Regex RepoId();
}
