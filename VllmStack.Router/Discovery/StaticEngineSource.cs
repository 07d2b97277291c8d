using System.Runtime.CompilerServices;

namespace VllmStack.Router.Discovery;

/// <summary>A fixed list: <c>--static-backends</c> and the Aspire <c>services__NAME__http__N</c> endpoints of engine services.</summary>
public sealed class StaticEngineSource(IReadOnlySet<Uri> engines) : IEngineSource
{
    public string Name => "static";

    public async IAsyncEnumerable<IReadOnlySet<Uri>> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        yield return engines;
        await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
    }
}
