using System.Net;

namespace VllmStack.Router.Forwarding;

/// <summary>
/// Sends a body the router holds whole in one write with the request headers. YARP's request content flushes the
/// headers before it copies the body (so that streaming protocols such as gRPC start at once); for a JSON body that is
/// already in memory that costs a second send on the router and a second read on the engine for every request. The
/// body still comes from the attempt's <see cref="AttemptBody"/>, so its timers and progress stay as they are.
/// </summary>
internal sealed class HeldBodyHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
{
    /// <summary>Set on a request whose body is held whole: the attempt's body.</summary>
    public static readonly HttpRequestOptionsKey<AttemptBody> HeldBody = new("VllmStack.HeldBody");

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Options.TryGetValue(HeldBody, out var body) && request.Content is { } streamed)
        {
            var held = new HeldBodyContent(body);
            foreach (var (name, values) in streamed.Headers.NonValidated)
            {
                held.Headers.TryAddWithoutValidation(name, values);
            }
            request.Content = held;
        }
        return base.SendAsync(request, cancellationToken);
    }

    /// <summary>The attempt's body, written into the connection's buffer without a flush of its own.</summary>
    private sealed class HeldBodyContent(AttemptBody body) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
            SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) =>
            body.WriteHeldAsync(stream, cancellationToken).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = body.HeldLength;
            return true;
        }
    }
}
