namespace VllmStack.EngineSim.Engine;

/// <summary>
/// The engine core died; nothing it held or is given will finish. vLLM raises <c>EngineDeadError</c>
/// (<c>vllm/v1/engine/exceptions.py</c>) with this message for every request in flight and every new one.
/// </summary>
public sealed class EngineDeadException() : Exception(EngineDeadMessage)
{
    /// <summary>vLLM's <c>EngineDeadError</c> message, word for word: clients and log scrapers match on it.</summary>
    public const string EngineDeadMessage = "EngineCore encountered an issue. See stack trace (above) for the root cause.";
}
