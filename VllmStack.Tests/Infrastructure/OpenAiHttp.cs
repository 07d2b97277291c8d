using System.Diagnostics;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace VllmStack.Tests.Infrastructure;

/// <summary>Raw HTTP helpers for what the OpenAI SDK does not expose (vLLM extensions, SSE framing, timing).</summary>
public static class OpenAiHttp
{
    public static async Task<(int Status, JsonNode? Body)> PostJsonAsync(HttpClient http, string path, object body, CancellationToken cancellationToken = default)
    {
        using var response = await http.PostAsJsonAsync(path, body, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        return ((int)response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    public static async Task<(int Status, JsonNode? Body)> PostRawAsync(HttpClient http, string path, string body, string contentType = "application/json")
    {
        using var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        using var response = await http.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    public sealed record StreamResult(IReadOnlyList<JsonNode> Chunks, IReadOnlyList<string> RawEvents, TimeSpan TimeToFirstToken, string Text);

    /// <summary>Streams a request and reads every SSE event; TTFT is measured at the first chunk that carries text.</summary>
    public static async Task<StreamResult> StreamAsync(HttpClient http, string path, object body, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        await using var stream = await response.Content.ReadAsStreamAsync(cancellationToken);
        using var reader = new StreamReader(stream);
        var chunks = new List<JsonNode>();
        var raw = new List<string>();
        var text = new StringBuilder();
        TimeSpan? ttft = null;
        var buffer = new StringBuilder();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length > 0)
            {
                buffer.Append(line).Append('\n');
                continue;
            }
            var evt = buffer.ToString();
            buffer.Clear();
            raw.Add(evt);
            if (!evt.StartsWith("data: ", StringComparison.Ordinal))
            {
                throw new FormatException("SSE event without 'data: ': " + evt);
            }
            var data = evt["data: ".Length..].TrimEnd('\n');
            if (data == "[DONE]")
            {
                break;
            }
            var chunk = JsonNode.Parse(data)!;
            chunks.Add(chunk);
            foreach (var choice in chunk["choices"]?.AsArray() ?? [])
            {
                var piece = choice!["delta"]?["content"]?.GetValue<string>() ?? choice["text"]?.GetValue<string>();
                if (!string.IsNullOrEmpty(piece))
                {
                    ttft ??= clock.Elapsed;
                    text.Append(piece);
                }
            }
        }
        return new StreamResult(chunks, raw, ttft ?? clock.Elapsed, text.ToString());
    }

    /// <summary>
    /// One streamed chat of <paramref name="maxTokens"/> tokens: <c>"ok"</c> when it ended with <c>[DONE]</c> and no
    /// error frame, else what went wrong (status and body, the error frame, or the transport failure).
    /// </summary>
    public static async Task<string> TryChatAsync(HttpClient http, string model, string prompt, CancellationToken cancellationToken, int maxTokens = 8)
    {
        var body = new
        {
            model,
            messages = new[] { new { role = "user", content = prompt } },
            max_tokens = maxTokens,
            ignore_eos = true,
            stream = true,
        };
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = JsonContent.Create(body) };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return $"{(int)response.StatusCode} {text[..Math.Min(200, text.Length)]}";
            }
            return text.Contains("\"error\"", StringComparison.Ordinal) ? "error frame: " + text[^Math.Min(300, text.Length)..]
                : text.TrimEnd().EndsWith("data: [DONE]", StringComparison.Ordinal) ? "ok" : "no [DONE]";
        }
        catch (HttpRequestException e)
        {
            return "transport: " + e.Message;
        }
    }

    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web);
}
