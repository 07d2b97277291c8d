using System.Threading.Channels;

namespace VllmStack.Router.Discovery;

/// <summary>Passes engine sets to the consumer, dropping any equal to the one passed before.</summary>
internal sealed class EngineSetWriter(ChannelWriter<IReadOnlySet<Uri>> writer)
{
    private IReadOnlySet<Uri>? _last;

    public bool HasPublished => _last is not null;

    public int Count => _last?.Count ?? 0;

    public bool Publish(IReadOnlySet<Uri> engines, bool force)
    {
        if (!force && _last is not null && _last.SetEquals(engines))
        {
            return false;
        }
        _last = engines;
        // Unbounded: never fails while the channel is open.
        return writer.TryWrite(engines);
    }

    public void Complete(Exception? failure) => writer.TryComplete(failure);
}
