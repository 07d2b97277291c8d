using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;

namespace VllmStack.EngineSim.Api;

/// <summary>
/// Server-sent events as the OpenAI API streams them: <c>data: {json}\n\n</c> per chunk, <c>data: [DONE]\n\n</c>
/// at the end, each flushed at once. Writers from several choices take turns.
/// </summary>
internal sealed class SseWriter : IAsyncDisposable
{
    private readonly HttpResponse _response;
    private readonly Utf8JsonWriter _json;
    private readonly SemaphoreSlim _turn = new(1, 1);

    public SseWriter(HttpResponse response)
    {
        _response = response;
        _json = JsonWriting.Create(response.BodyWriter);
    }

    /// <summary>
    /// Sends <c>200</c> and the SSE headers now, before the request is queued or prefilled, as vLLM does (its
    /// <c>StreamingResponse</c> starts when the request is accepted): a client may then wait long for the first token.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        _response.StatusCode = StatusCodes.Status200OK;
        _response.ContentType = "text/event-stream; charset=utf-8";
        _response.Headers.CacheControl = "no-cache";
        _response.HttpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        await _response.StartAsync(cancellationToken).ConfigureAwait(false);
        await _response.BodyWriter.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask WriteAsync<TState>(TState state, Action<Utf8JsonWriter, TState> write, CancellationToken cancellationToken)
    {
        await _turn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var pipe = _response.BodyWriter;
            pipe.Write("data: "u8);
            _json.Reset(pipe);
            write(_json, state);
            _json.Flush();
            pipe.Write("\n\n"u8);
            await pipe.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _turn.Release();
        }
    }

    public ValueTask WriteErrorAsync(ApiError error, CancellationToken cancellationToken) =>
        WriteAsync(error, static (w, e) => e.WriteTo(w), cancellationToken);

    public async ValueTask WriteDoneAsync(CancellationToken cancellationToken)
    {
        await _turn.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _response.BodyWriter.Write("data: [DONE]\n\n"u8);
            await _response.BodyWriter.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _turn.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _json.DisposeAsync().ConfigureAwait(false);
        _turn.Dispose();
    }
}
