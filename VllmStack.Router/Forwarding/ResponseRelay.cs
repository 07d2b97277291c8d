using System.Buffers;
using System.Diagnostics;
using Microsoft.AspNetCore.Http.Features;
using VllmStack.Router.Api;
using VllmStack.Router.Health;
using VllmStack.Router.Stats;

namespace VllmStack.Router.Forwarding;

/// <summary>How relaying an engine's response to the client ended.</summary>
/// <param name="EngineFailure">Set when the engine failed after its headers (nothing more can be retried).</param>
/// <param name="FirstByte">Timestamp (<see cref="Stopwatch"/>) of the engine's first body byte; 0 if none came.</param>
/// <param name="LastByte">Timestamp of the engine's last body chunk.</param>
public sealed record RelayResult(bool ClientLeft, EngineFailureKind? EngineFailure, string? Detail, long FirstByte, long LastByte, int Chunks);

/// <summary>
/// Relays an engine's response to the client as it arrives: status and end-to-end headers, then the body, server-sent
/// events flushed chunk by chunk, byte for byte. Two silences are bounded separately: until the first body byte (a
/// stream may wait minutes in the engine's queue; SSE comments keep the client's connection alive meanwhile) and
/// between chunks once the body flows. If the engine fails after the headers went out, a stream ends with an error
/// frame and <c>[DONE]</c> so clients stop cleanly; any other body is cut, so the client cannot take it as whole.
/// </summary>
public sealed class ResponseRelay(ForwardingOptions options, RouterMetrics metrics)
{
    private const int BufferSize = 16 * 1024;
    private static readonly byte[] KeepAlive = ": keep-alive\n\n"u8.ToArray();

    public async Task<RelayResult> RelayAsync(HttpContext context, HttpResponseMessage response)
    {
        var aborted = context.RequestAborted;
        context.Response.StatusCode = (int)response.StatusCode;
        ProxyHeaders.CopyToClient(response, context.Response);
        var streaming = response.Content.Headers.ContentType?.MediaType == "text/event-stream";
        if (streaming)
        {
            context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            // Headers go out now: the client learns the request is accepted before the first token. (StartAsync alone only
            // buffers them in Kestrel; the flush puts them on the wire.)
            await context.Response.StartAsync(aborted);
            await context.Response.Body.FlushAsync(aborted);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        long first = 0;
        long last = 0;
        var chunks = 0;
        try
        {
            await using var upstream = await response.Content.ReadAsStreamAsync(aborted);
            var silence = CancellationTokenSource.CreateLinkedTokenSource(aborted);
            try
            {
                while (true)
                {
                    var waitingForFirst = first == 0;
                    if (!silence.TryReset())
                    {
                        // The timer fired after the last read had completed (while a slow client took the write): that silence
                        // was the client's, not the engine's, so the next read gets a fresh timer.
                        silence.Dispose();
                        silence = CancellationTokenSource.CreateLinkedTokenSource(aborted);
                    }
                    // Only the engine's silence is timed: the timer runs while reading, never while a slow client takes the write.
                    silence.CancelAfter(TimeSpan.FromSeconds(waitingForFirst ? options.FirstByteTimeout : options.IdleTimeout));
                    int read;
                    try
                    {
                        var reading = upstream.ReadAsync(buffer, silence.Token);
                        read = waitingForFirst && streaming && options.KeepAliveInterval > 0
                            ? await KeepClientAliveAsync(context, reading.AsTask())
                            : await reading;
                        silence.CancelAfter(Timeout.InfiniteTimeSpan);
                    }
                    catch (Exception e) when (!aborted.IsCancellationRequested && e is IOException or HttpRequestException or OperationCanceledException)
                    {
                        var (kind, detail) = e is OperationCanceledException
                            ? waitingForFirst
                                ? (EngineFailureKind.FirstByteTimeout, $"no body byte within {options.FirstByteTimeout} s of the headers")
                                : (EngineFailureKind.IdleTimeout, $"no body byte for {options.IdleTimeout} s")
                            : (EngineFailureKind.ResetMidResponse, e.Message);
                        await EndBrokenResponseAsync(context, streaming, detail);
                        return new RelayResult(false, kind, detail, first, last, chunks);
                    }
                    if (read == 0)
                    {
                        return new RelayResult(false, null, null, first, last, chunks);
                    }
                    last = Stopwatch.GetTimestamp();
                    if (first == 0)
                    {
                        first = last;
                    }
                    chunks++;
                    await context.Response.Body.WriteAsync(buffer.AsMemory(0, read), aborted);
                    if (streaming)
                    {
                        await context.Response.Body.FlushAsync(aborted);
                    }
                }
            }
            finally
            {
                silence.Dispose();
            }
        }
        catch (Exception e) when (aborted.IsCancellationRequested && e is OperationCanceledException or IOException)
        {
            // The client left: disposing the upstream response closes the engine connection, which aborts the request there.
            return new RelayResult(true, null, null, first, last, chunks);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Waits for the engine's first bytes, writing an SSE comment to the client every keep-alive interval meanwhile.</summary>
    private async Task<int> KeepClientAliveAsync(HttpContext context, Task<int> reading)
    {
        var interval = TimeSpan.FromSeconds(options.KeepAliveInterval);
        while (true)
        {
            try
            {
                return await reading.WaitAsync(interval, context.RequestAborted);
            }
            catch (TimeoutException)
            {
                await context.Response.Body.WriteAsync(KeepAlive, context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                metrics.KeepAliveSent();
            }
        }
    }

    private static async Task EndBrokenResponseAsync(HttpContext context, bool streaming, string reason)
    {
        if (!streaming)
        {
            context.Abort();
            return;
        }
        var body = context.Response.Body;
        try
        {
            await body.WriteAsync("data: "u8.ToArray(), context.RequestAborted);
            await body.WriteAsync(ErrorResponses.Body(502, $"The engine failed while streaming the response: {reason}"), context.RequestAborted);
            await body.WriteAsync("\n\ndata: [DONE]\n\n"u8.ToArray(), context.RequestAborted);
            await body.FlushAsync(context.RequestAborted);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // The client is gone too.
        }
    }
}
