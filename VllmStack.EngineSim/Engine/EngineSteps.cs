namespace VllmStack.EngineSim.Engine;

/// <summary>
/// Groups what the batch computes into engine steps, the unit of vLLM's per-step <c>IterationStats</c>. Sequences here
/// advance on their own clocks, so a step is inferred: it ends when a sequence that already produced a token in it
/// produces again (each running sequence advances at most once per step), or when the batch empties. A step counts, as
/// vLLM does, the prompt of every sequence that produced its first token in it plus one token per sequence that produced.
/// Not thread-safe: the scheduler calls it under its lock.
/// </summary>
internal sealed class EngineSteps(Action<int> stepEnded)
{
    private long _current = 1;
    private int _tokens;

    public void Produced(Sequence seq, int tokens)
    {
        if (seq.LastStep == _current)
        {
            End();
        }
        seq.LastStep = _current;
        _tokens += tokens;
    }

    public void BatchEmptied()
    {
        if (_tokens > 0)
        {
            End();
        }
    }

    private void End()
    {
        var tokens = _tokens;
        _tokens = 0;
        _current++;
        stepEnded(tokens);
    }
}
