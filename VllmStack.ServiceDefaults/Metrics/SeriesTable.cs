using System.Collections.Concurrent;

namespace VllmStack.ServiceDefaults.Metrics;

/// <summary>
/// The series of one instrument. A lookup by the measurement's tag span allocates nothing once the
/// series exists; new series are appended in creation order so that scrapes are stable.
/// Past <see cref="MaxSeries"/> distinct tag sets, measurements go to one overflow series
/// (<c>otel_metric_overflow="true"</c>) instead of growing memory without bound.
/// </summary>
internal sealed class SeriesTable<TCell> where TCell : class
{
    private static readonly KeyValuePair<string, object?>[] OverflowTags = [new("otel_metric_overflow", "true")];

    private readonly ConcurrentDictionary<TagSet, TCell> _cells = new(TagSetComparer.Instance);
    private readonly ConcurrentDictionary<TagSet, TCell>.AlternateLookup<ReadOnlySpan<KeyValuePair<string, object?>>> _lookup;
    private readonly Func<TCell> _factory;
    private readonly Lock _addLock = new();
    private TCell? _untagged;
    private TCell? _overflow;
    private (TagSet Tags, TCell Cell)[] _ordered = [];

    public SeriesTable(Func<TCell> factory, int maxSeries)
    {
        _factory = factory;
        MaxSeries = maxSeries;
        _lookup = _cells.GetAlternateLookup<ReadOnlySpan<KeyValuePair<string, object?>>>();
    }

    public int MaxSeries { get; }

    public (TagSet Tags, TCell Cell)[] Series => Volatile.Read(ref _ordered);

    public TCell Get(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
        {
            return _untagged ?? Add(TagSet.Empty);
        }
        return _lookup.TryGetValue(tags, out var cell) ? cell : Add(TagSet.Create(tags));
    }

    private TCell Add(TagSet tags)
    {
        lock (_addLock)
        {
            if (_cells.TryGetValue(tags, out var existing))
            {
                return existing;
            }
            if (_cells.Count >= MaxSeries)
            {
                return _overflow ??= AddLocked(TagSet.Create(OverflowTags));
            }
            var cell = AddLocked(tags);
            if (tags.Tags.Length == 0)
            {
                _untagged = cell;
            }
            return cell;
        }
    }

    private TCell AddLocked(TagSet tags)
    {
        var cell = _factory();
        _cells[tags] = cell;
        var ordered = _ordered;
        var next = new (TagSet, TCell)[ordered.Length + 1];
        ordered.CopyTo(next, 0);
        next[^1] = (tags, cell);
        Volatile.Write(ref _ordered, next);
        return cell;
    }
}
