namespace VllmStack.EngineSim.Engine;

/// <summary>
/// Which parts of the engine sleep, as vLLM's executor tracks them (<c>vllm/v1/executor/abstract.py</c>, sleep and
/// wake_up): a sleep of any level puts <c>weights</c> and <c>kv_cache</c> to sleep; waking names some of them (or
/// all); the engine is asleep until both are back. A wake-up naming a part that is not asleep changes nothing.
/// </summary>
public sealed class SleepState(Scheduler scheduler, bool releasesGpuMemory)
{
    /// <summary>The parts vLLM's sleep mode frees, by their tag names.</summary>
    public static readonly IReadOnlyList<string> Tags = ["weights", "kv_cache"];

    private readonly Lock _lock = new();
    private readonly HashSet<string> _sleeping = new(StringComparer.Ordinal);

    public bool IsSleeping
    {
        get
        {
            lock (_lock)
            {
                return _sleeping.Count > 0;
            }
        }
    }

    /// <summary>Level 1 offloads the weights and level 2 discards them; both free the KV cache. Asleep already: nothing happens.</summary>
    public void Sleep()
    {
        lock (_lock)
        {
            if (_sleeping.Count > 0)
            {
                return;
            }
            _sleeping.UnionWith(Tags);
            scheduler.Sleep(releasesGpuMemory);
        }
    }

    /// <summary>Wakes the named parts (none named: all); false when a named part was not asleep, and then nothing changes.</summary>
    public bool WakeUp(IReadOnlyCollection<string> tags)
    {
        lock (_lock)
        {
            if (_sleeping.Count == 0)
            {
                return true;
            }
            if (tags.Any(tag => !_sleeping.Contains(tag)))
            {
                return false;
            }
            if (tags.Count == 0)
            {
                _sleeping.Clear();
            }
            else
            {
                _sleeping.ExceptWith(tags);
            }
            if (_sleeping.Count == 0)
            {
                scheduler.WakeUp();
            }
            return true;
        }
    }
}
