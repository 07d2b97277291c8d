using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;

namespace VllmStack.ServiceDefaults.Telemetry;

public static class UntracedCalls
{
    /// <summary>
    /// Calls through this client are not traced, on either side: for a background loop's calls (scrapes, probes, event
    /// batches), which run every second or so and would bury the traces of the requests users make. Their timings stay in
    /// the metrics. The client starts no span, and sends a W3C <c>traceparent</c> whose sampled flag is off, so a server
    /// that samples by its parent (ours, and OpenTelemetry's default) records none either.
    /// </summary>
    public static IHttpClientBuilder WithoutTracing(this IHttpClientBuilder builder) =>
        builder.AddHttpMessageHandler(() => new UntracedHandler());

    private sealed class UntracedHandler : DelegatingHandler
    {
        private const string TraceParent = "traceparent";

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            // The SDK samples no span while the scope is open, so HttpClient starts none and sends no context of its own.
            using var scope = SuppressInstrumentationScope.Begin();
            if (!request.Headers.Contains(TraceParent))
            {
                request.Headers.TryAddWithoutValidation(TraceParent, $"00-{ActivityTraceId.CreateRandom()}-{ActivitySpanId.CreateRandom()}-00");
            }
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
    }
}
