namespace VllmStack.Router.Admission;

/// <summary>
/// A queue that serves clients in turn: each client has its own sub-queue, and the clients with queued entries are
/// served round-robin, one entry per turn, so that a client with many queued requests waits behind its own requests,
/// not in front of everyone else's. Within a client, the lower <c>priority</c> goes first (as vLLM's priority
/// scheduling orders its queue), then arrival order. Not thread-safe: the caller holds a lock.
/// </summary>
public sealed class FairQueue<T>
{
    private readonly Dictionary<string, ClientQueue> _clients = new(StringComparer.Ordinal);
    private readonly LinkedList<ClientQueue> _turns = new();
    private long _sequence;

    /// <summary>Entries queued, all clients together.</summary>
    public int Count { get; private set; }

    /// <summary>Clients with at least one queued entry.</summary>
    public int Clients => _turns.Count;

    public Entry Enqueue(string client, int priority, T item)
    {
        if (!_clients.TryGetValue(client, out var queue))
        {
            queue = new ClientQueue(client);
            _clients[client] = queue;
            queue.Turn = _turns.AddLast(queue);
        }
        var entry = new Entry(client, priority, _sequence++, item);
        queue.Entries.Add(entry);
        entry.Owner = queue;
        Count++;
        return entry;
    }

    /// <summary>Takes the first entry of the client whose turn it is; that client then goes to the back of the line.</summary>
    public bool TryDequeue(out T item)
    {
        var turn = _turns.First;
        if (turn is null)
        {
            item = default!;
            return false;
        }
        var queue = turn.Value;
        var entry = queue.Entries.Min!;
        Take(queue, entry);
        if (queue.Entries.Count > 0)
        {
            _turns.Remove(turn);
            _turns.AddLast(turn);
        }
        item = entry.Item;
        return true;
    }

    /// <summary>Takes <paramref name="entry"/> out wherever it is (its client left or waited too long); false if already gone.</summary>
    public bool Remove(Entry entry)
    {
        if (entry.Owner is not { } queue)
        {
            return false;
        }
        Take(queue, entry);
        return true;
    }

    public int CountFor(string client) => _clients.TryGetValue(client, out var queue) ? queue.Entries.Count : 0;

    private void Take(ClientQueue queue, Entry entry)
    {
        queue.Entries.Remove(entry);
        entry.Owner = null;
        Count--;
        if (queue.Entries.Count == 0)
        {
            _turns.Remove(queue.Turn!);
            _clients.Remove(queue.Key);
        }
    }

    /// <summary>One queued item; <see cref="IsQueued"/> until it is dequeued or removed.</summary>
    public sealed class Entry(string client, int priority, long sequence, T item)
    {
        public string Client { get; } = client;

        public int Priority { get; } = priority;

        public long Sequence { get; } = sequence;

        public T Item { get; } = item;

        internal ClientQueue? Owner { get; set; }

        public bool IsQueued => Owner is not null;
    }

    internal sealed class ClientQueue(string key)
    {
        public string Key { get; } = key;

        public SortedSet<Entry> Entries { get; } = new(EntryOrder.Instance);

        public LinkedListNode<ClientQueue>? Turn { get; set; }
    }

    private sealed class EntryOrder : IComparer<Entry>
    {
        public static readonly EntryOrder Instance = new();

        public int Compare(Entry? x, Entry? y) =>
            x!.Priority != y!.Priority ? x.Priority.CompareTo(y.Priority) : x.Sequence.CompareTo(y.Sequence);
    }
}
