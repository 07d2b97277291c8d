using System.Diagnostics;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.EngineSim.Engine;

public enum SequenceState
{
    New,
    Waiting,
    Running,
    Finished,
}

/// <summary>One sequence (one choice of one request) as the scheduler sees it: its tokens and its KV blocks.</summary>
public sealed class Sequence
{
    private readonly ulong _rootHash;

    /// <param name="namespaceHash">The chain's root: <see cref="KvBlockHashes.Root"/> of the base model and adapter.</param>
    /// <param name="priority">The request's <c>priority</c>: lower runs first under the priority scheduling policy.</param>
    public Sequence(int[] promptTokens, string? lora, ulong namespaceHash, int priority = 0)
    {
        Priority = priority;
        Tokens = new List<int>(promptTokens.Length + 64);
        Tokens.AddRange(promptTokens);
        PromptLength = promptTokens.Length;
        Lora = lora;
        _rootHash = namespaceHash;
        ArrivalTimestamp = Stopwatch.GetTimestamp();
    }

    public List<int> Tokens { get; }

    public int PromptLength { get; }

    public int OutputLength => Tokens.Count - PromptLength;

    public string? Lora { get; }

    /// <summary>The request this sequence is one of <c>n</c> samples of; null for a request with <c>n</c> = 1.</summary>
    public ParentRequest? Parent { get; init; }

    public long ArrivalTimestamp { get; }

    public int Priority { get; }

    public long FirstScheduledTimestamp { get; internal set; }

    public int Preemptions { get; internal set; }

    /// <summary>Tokens found in the prefix cache at the sequence's latest admission.</summary>
    public int CachedTokens { get; internal set; }

    internal SequenceState State { get; set; } = SequenceState.New;

    internal List<int> Blocks { get; } = [];

    /// <summary>How many of <see cref="Blocks"/>, from the first, are registered in the prefix cache.</summary>
    internal int RegisteredBlocks { get; set; }

    internal List<ulong> BlockHashes { get; } = [];

    /// <summary>The engine step in which this sequence last produced a token (see <see cref="EngineSteps"/>).</summary>
    internal long LastStep { get; set; }

    internal TaskCompletionSource<int>? Admission { get; set; }

    internal LinkedListNode<Sequence>? WaitingNode { get; set; }

    /// <summary>Chained hashes of every full block of <see cref="Tokens"/> (extended as tokens are added).</summary>
    internal List<ulong> HashFullBlocks(int blockSize)
    {
        KvBlockHashes.Extend(BlockHashes, _rootHash, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(Tokens), blockSize);
        return BlockHashes;
    }
}
