using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace VllmStack.Bench.MultiRound;

/// <summary>Where and how to send the chat requests.</summary>
/// <param name="BaseUrl">An OpenAI-compatible base URL, with or without the <c>/v1</c> path.</param>
/// <param name="SessionHeader">Header carrying the user id (for session routing); empty for none.</param>
public sealed record ChatEndpoint(Uri BaseUrl, string Model, string? ApiKey, string SessionHeader, int AnswerTokens, TimeSpan RequestTimeout)
{
    public Uri ChatCompletionsUrl => Api("chat/completions");

    public Uri ModelsUrl => Api("models");

    private Uri Api(string path)
    {
        var basePath = BaseUrl.AbsolutePath.TrimEnd('/');
        var v1 = basePath.EndsWith("/v1", StringComparison.Ordinal) ? basePath : basePath + "/v1";
        return new UriBuilder(BaseUrl) { Path = v1 + "/" + path, Query = "" }.Uri;
    }
}

/// <summary>
/// Streams <c>POST /v1/chat/completions</c> with <c>stream_options.include_usage</c> and <c>ignore_eos</c> (so
/// answers have the requested length), timing the first content token, every later content chunk and the end.
/// </summary>
public sealed class OpenAiChatClient : IChatTurnClient, IDisposable
{
    private const int MaxErrorBodyChars = 2000;
    private readonly HttpClient _http;
    private readonly ChatEndpoint _endpoint;

    public OpenAiChatClient(ChatEndpoint endpoint)
    {
        _endpoint = endpoint;
        _http = new HttpClient(new SocketsHttpHandler
        {
            // Every simulated user may have a request in flight; none should queue for a connection.
            MaxConnectionsPerServer = int.MaxValue,
            UseProxy = false,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        })
        {
            // Each request has its own timeout (a linked token), which tells a timeout from a cancelled run.
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public ChatEndpoint Endpoint => _endpoint;

    /// <summary>The first model the server lists, for runs that do not name one.</summary>
    public static async Task<string> FirstModelAsync(ChatEndpoint endpoint, CancellationToken cancellationToken)
    {
        using var client = new OpenAiChatClient(endpoint);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(endpoint.RequestTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Get, endpoint.ModelsUrl);
        client.Authorize(request);
        using var response = await client._http.SendAsync(request, timeout.Token);
        var body = await response.Content.ReadAsStringAsync(timeout.Token);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"GET {endpoint.ModelsUrl} answered {(int)response.StatusCode}: {Truncate(body)}");
        }
        using var json = JsonDocument.Parse(body);
        return json.RootElement.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Array &&
               data.EnumerateArray().Select(m => m.TryGetProperty("id", out var id) ? id.GetString() : null).FirstOrDefault(id => !string.IsNullOrEmpty(id)) is { } model
            ? model
            : throw new HttpRequestException($"GET {endpoint.ModelsUrl} lists no model.");
    }

    public async Task<TurnResult> SendAsync(ChatTurn turn, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_endpoint.RequestTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, _endpoint.ChatCompletionsUrl) { Content = Body(turn) };
        Authorize(request);
        if (_endpoint.SessionHeader.Length > 0)
        {
            request.Headers.TryAddWithoutValidation(_endpoint.SessionHeader, turn.UserId);
        }

        var startedAt = DateTimeOffset.UtcNow;
        var sentAt = Stopwatch.GetTimestamp();
        var state = new ChatStreamState(sentAt);
        int? status = null;
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            status = (int)response.StatusCode;
            if (status >= 400)
            {
                var body = await response.Content.ReadAsStringAsync(timeout.Token);
                state.Fail(RequestErrorKind.HttpStatus, $"HTTP {status}: {ErrorText(body)}");
            }
            else
            {
                await using var stream = await response.Content.ReadAsStreamAsync(timeout.Token);
                using var reader = new StreamReader(stream, Encoding.UTF8);
                await foreach (var data in SseReader.ReadEventsAsync(reader, timeout.Token))
                {
                    state.Accept(data, Stopwatch.GetTimestamp());
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            state.Fail(RequestErrorKind.Timeout, $"no complete answer within {_endpoint.RequestTimeout.TotalSeconds:0.###} s");
        }
        catch (HttpRequestException e) when (status is null)
        {
            state.Fail(RequestErrorKind.Connection, e.Message);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            state.Fail(RequestErrorKind.BrokenStream, e.Message);
        }
        var record = state.Finish(turn, startedAt, status, Stopwatch.GetTimestamp());
        return new TurnResult(record, record.Succeeded ? state.Answer : "");
    }

    public void Dispose() => _http.Dispose();

    private void Authorize(HttpRequestMessage request)
    {
        if (!string.IsNullOrEmpty(_endpoint.ApiKey))
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _endpoint.ApiKey);
        }
    }

    private ByteArrayContent Body(ChatTurn turn)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("model", turn.Model ?? _endpoint.Model);
            json.WriteStartArray("messages");
            foreach (var message in turn.Messages)
            {
                json.WriteStartObject();
                json.WriteString("role", message.Role);
                json.WriteString("content", message.Content);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteNumber("max_tokens", _endpoint.AnswerTokens);
            // vLLM's extension: keep generating past the end-of-sequence token, so every answer has the same length.
            json.WriteBoolean("ignore_eos", true);
            json.WriteBoolean("stream", true);
            json.WriteStartObject("stream_options");
            json.WriteBoolean("include_usage", true);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        var content = new ByteArrayContent(buffer.ToArray());
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }

    /// <summary>The message of an OpenAI error body, else the start of the body.</summary>
    private static string ErrorText(string body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            if (json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty("error", out var error))
            {
                return Truncate(ChatStreamState.ErrorMessage(error));
            }
        }
        catch (JsonException)
        {
            // Not JSON (a proxy's HTML page, say): show it as it is.
        }
        return Truncate(body);
    }

    private static string Truncate(string text) => text.Length <= MaxErrorBodyChars ? text : text[..MaxErrorBodyChars] + "…";
}
