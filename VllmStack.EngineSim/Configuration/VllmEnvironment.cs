using System.Globalization;

namespace VllmStack.EngineSim.Configuration;

/// <summary>
/// The environment variables of vLLM's <c>vllm/envs.py</c> that change the server's surface, read the way vLLM reads
/// each one (a value vLLM cannot parse stops it at start-up, so it stops the simulator too).
/// </summary>
public static class VllmEnvironment
{
    /// <summary><c>/sleep</c>, <c>/wake_up</c>, <c>/is_sleeping</c>, <c>/reset_prefix_cache</c> exist only when this is a non-zero integer.</summary>
    public const string ServerDevMode = "VLLM_SERVER_DEV_MODE";

    /// <summary><c>/v1/load_lora_adapter</c> and <c>/v1/unload_lora_adapter</c> exist only when this is <c>1</c> or <c>true</c>.</summary>
    public const string AllowRuntimeLoraUpdating = "VLLM_ALLOW_RUNTIME_LORA_UPDATING";

    /// <summary>Set: the server stays up after its engine core died (else it shuts down).</summary>
    public const string KeepAliveOnEngineDeath = "VLLM_KEEP_ALIVE_ON_ENGINE_DEATH";

    /// <summary>Seconds an idle HTTP keep-alive connection stays open (uvicorn's <c>timeout_keep_alive</c>); default 5.</summary>
    public const string HttpTimeoutKeepAlive = "VLLM_HTTP_TIMEOUT_KEEP_ALIVE";

    /// <summary>vLLM: <c>bool(int(os.getenv(name, "0")))</c>.</summary>
    public static bool IntFlag(string name) => Int(name, 0) != 0;

    /// <summary>vLLM: <c>os.environ.get(name, "0").strip().lower() in ("1", "true")</c>.</summary>
    public static bool TrueFlag(string name) =>
        Environment.GetEnvironmentVariable(name)?.Trim().ToLowerInvariant() is "1" or "true";

    /// <summary>
    /// Set to anything but empty or <c>0</c>. (vLLM 0.11 reads <c>bool(os.getenv(name, 0))</c>, so there even <c>0</c>
    /// counts as set; later releases parse an integer. The simulator takes the later, unsurprising reading.)
    /// </summary>
    public static bool SetFlag(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value && value.Trim() != "0";

    /// <summary>vLLM: <c>int(os.getenv(name, default))</c>; anything else is a start-up error.</summary>
    public static int Int(string name, int defaultValue)
    {
        var text = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrWhiteSpace(text))
        {
            return defaultValue;
        }
        return int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new FormatException($"environment variable {name}='{text}' is not an integer");
    }
}
