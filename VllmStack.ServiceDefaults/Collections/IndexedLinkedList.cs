namespace VllmStack.ServiceDefaults.Collections;

/// <summary>
/// A doubly linked list of the integers 0…capacity−1, kept in two arrays: adding at either end, removing and
/// testing membership are O(1) and allocate nothing after construction. The building block of fixed-size
/// LRU structures (the engine's free-block queue, the router's prefix index).
/// </summary>
public sealed class IndexedLinkedList
{
    public const int None = -1;

    private readonly int[] _prev;
    private readonly int[] _next;
    private readonly bool[] _linked;

    public IndexedLinkedList(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        _prev = new int[capacity];
        _next = new int[capacity];
        _linked = new bool[capacity];
    }

    public int Capacity => _linked.Length;

    public int Count { get; private set; }

    /// <summary>The first item, or <see cref="None"/>.</summary>
    public int First { get; private set; } = None;

    /// <summary>The last item, or <see cref="None"/>.</summary>
    public int Last { get; private set; } = None;

    /// <summary>Bytes held by the list's arrays.</summary>
    public long Bytes => (long)Capacity * (2 * sizeof(int) + sizeof(bool));

    public bool Contains(int item) => _linked[item];

    /// <summary>The item after <paramref name="item"/>, or <see cref="None"/>.</summary>
    public int Next(int item) => _next[item];

    public void AddFirst(int item)
    {
        Link(item);
        _prev[item] = None;
        _next[item] = First;
        if (First != None)
        {
            _prev[First] = item;
        }
        First = item;
        if (Last == None)
        {
            Last = item;
        }
    }

    public void AddLast(int item)
    {
        Link(item);
        _next[item] = None;
        _prev[item] = Last;
        if (Last != None)
        {
            _next[Last] = item;
        }
        Last = item;
        if (First == None)
        {
            First = item;
        }
    }

    public void Remove(int item)
    {
        if (!_linked[item])
        {
            throw new InvalidOperationException($"{item} is not in the list.");
        }
        var prev = _prev[item];
        var next = _next[item];
        if (prev != None)
        {
            _next[prev] = next;
        }
        else
        {
            First = next;
        }
        if (next != None)
        {
            _prev[next] = prev;
        }
        else
        {
            Last = prev;
        }
        _linked[item] = false;
        Count--;
    }

    /// <summary>Moves an item that is in the list to its front (most recently used, for an LRU).</summary>
    public void MoveToFirst(int item)
    {
        Remove(item);
        AddFirst(item);
    }

    private void Link(int item)
    {
        if (_linked[item])
        {
            throw new InvalidOperationException($"{item} is already in the list.");
        }
        _linked[item] = true;
        Count++;
    }
}
