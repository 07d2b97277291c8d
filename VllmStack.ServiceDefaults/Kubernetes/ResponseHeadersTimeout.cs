namespace VllmStack.ServiceDefaults.Kubernetes;

/// <summary>
/// Bounds the wait for a response's headers. The package exempts watches from its call timeout (they are long-lived),
/// so without this an API server that accepts a watch and never answers would hold it until the watch's own deadline.
/// The body is not bounded here: reading it is the caller's, under its own token.
/// </summary>
internal sealed class ResponseHeadersTimeout(TimeSpan timeout) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        return await base.SendAsync(request, deadline.Token).ConfigureAwait(false);
    }
}
