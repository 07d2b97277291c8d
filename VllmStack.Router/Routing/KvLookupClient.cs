using System.Buffers;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using VllmStack.Router.Engines;

namespace VllmStack.Router.Routing;

/// <summary>What the cache server knows about one prompt: its length and, per engine, the leading tokens held.</summary>
public sealed record KvLookup(int TotalTokens, IReadOnlyDictionary<string, int> EngineTokens, int PoolTokens);

/// <summary>
/// Asks where a prompt's KV lives: an engine tokenizes it exactly as it will charge it (<c>/tokenize</c>, which vLLM and
/// EngineSim both serve), then the cache server matches the tokens' block chain. Both calls share one short budget;
/// any failure or delay answers null and the policy falls back to load alone.
/// </summary>
public sealed class KvLookupClient(HttpClient http, Uri cacheServer, KvAwareRoutingOptions options, ILogger<KvLookupClient> logger)
{
    private static readonly System.Diagnostics.Metrics.Meter Meter = new(Stats.RouterMetrics.MeterName + ".KvLookup");
    private static readonly System.Diagnostics.Metrics.Histogram<double> Duration = Meter.CreateHistogram<double>(
        "vllmstack:router_kv_lookup_duration_seconds", "s", "Time kvaware spends on a prompt: engine tokenize plus cache-server lookup.",
        advice: new System.Diagnostics.Metrics.InstrumentAdvice<double> { HistogramBucketBoundaries = [0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1] });

    private int _failing;

    public Uri CacheServer { get; } = cacheServer;

    private static readonly JsonSerializerOptions AnswerJson = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
    private long _fallbacks;

    /// <summary>Requests routed by load alone because the lookup failed or ran out of time (for metrics and tests).</summary>
    public long Fallbacks => Interlocked.Read(ref _fallbacks);

    public async Task<KvLookup?> LookupAsync(RoutingRequest request, Engine tokenizer, string baseModel, string? lora, CancellationToken cancellationToken)
    {
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        budget.CancelAfter(TimeSpan.FromMilliseconds(options.LookupTimeoutMs));
        var started = Stopwatch.GetTimestamp();
        try
        {
            var tokens = TokenIdsInBody(request.Body) ?? await TokenizeAsync(request, tokenizer, budget.Token).ConfigureAwait(false);
            if (tokens is null)
            {
                return null;
            }
            using var lookup = JsonContent(writer =>
            {
                writer.WriteString("model", baseModel);
                if (lora is not null)
                {
                    writer.WriteString("lora", lora);
                }
                writer.WriteStartArray("tokens");
                foreach (var token in tokens)
                {
                    writer.WriteNumberValue(token);
                }
                writer.WriteEndArray();
            }, tokens.Count * 7);
            using var response = await http.PostAsync(new Uri(CacheServer, "v1/kv/lookup"), lookup, budget.Token).ConfigureAwait(false);
            response.EnsureSuccessStatusCode();
            var answer = await response.Content.ReadFromJsonAsync<LookupAnswer>(AnswerJson, budget.Token).ConfigureAwait(false);
            if (answer?.Engines is null || answer.Engines.Any(e => e.Engine is null))
            {
                throw new JsonException("The cache server's lookup answer has no engine list.");
            }
            var engines = answer.Engines.ToDictionary(e => e.Engine!, e => e.Tokens, StringComparer.Ordinal);
            if (Interlocked.Exchange(ref _failing, 0) == 1)
            {
                logger.LogInformation("KV lookups work again ({CacheServer})", CacheServer);
            }
            Duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds);
            return new KvLookup(answer.TotalTokens, engines, answer.PoolTokens);
        }
        catch (Exception e) when (e is HttpRequestException or JsonException or InvalidOperationException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            Interlocked.Increment(ref _fallbacks);
            if (Interlocked.Exchange(ref _failing, 1) == 0)
            {
                logger.LogWarning("KV lookup failed ({Reason}); routing by load until it works again", e is OperationCanceledException ? $"over {options.LookupTimeoutMs} ms" : e.Message);
            }
            return null;
        }
    }

    private sealed record LookupAnswer(int TotalTokens, List<EngineTokens>? Engines, int PoolTokens);

    private sealed record EngineTokens(string? Engine, int Tokens);

    /// <summary>The fields of a chat request that change how its prompt renders, and so its tokens.</summary>
    private static readonly string[] ChatTemplateFields = ["messages", "tools", "chat_template", "chat_template_kwargs", "add_generation_prompt", "continue_final_message"];

    /// <summary>A completion whose prompt is already token ids needs no tokenizer.</summary>
    private static List<int>? TokenIdsInBody(ReadOnlyMemory<byte> body)
    {
        if (body.IsEmpty)
        {
            return null;
        }
        var reader = new Utf8JsonReader(body.Span);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return null;
        }
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isPrompt = reader.ValueTextEquals("prompt"u8);
            reader.Read();
            if (isPrompt && reader.TokenType == JsonTokenType.StartArray)
            {
                var tokens = ReadTokenArray(ref reader);
                return tokens is { Count: > 0 } ? tokens : null;
            }
            reader.Skip();
        }
        return null;
    }

    /// <summary>
    /// The prompt exactly as the engine tokenizes it: the request's messages (with what shapes their template) or its
    /// prompt text, sent to the engine's <c>/tokenize</c>. Raw JSON is copied through, not rebuilt as objects.
    /// </summary>
    private async Task<List<int>?> TokenizeAsync(RoutingRequest request, Engine engine, CancellationToken cancellationToken)
    {
        if (request.Body.IsEmpty)
        {
            return null;
        }
        using var body = JsonDocument.Parse(request.Body);
        var root = body.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        var isChat = root.TryGetProperty("messages", out _);
        if (!isChat && !(root.TryGetProperty("prompt", out var prompt) && prompt.ValueKind == JsonValueKind.String))
        {
            return null;
        }
        using var tokenize = JsonContent(writer =>
        {
            writer.WriteString("model", request.Model);
            foreach (var field in isChat ? ChatTemplateFields : ["prompt", "add_special_tokens"])
            {
                if (root.TryGetProperty(field, out var value))
                {
                    writer.WritePropertyName(field);
                    value.WriteTo(writer);
                }
            }
        }, request.Body.Length + 64);
        var started = Stopwatch.GetTimestamp();
        using var response = await http.PostAsync(new Uri(engine.Url, "tokenize"), tokenize, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        var answer = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var tokens = TokensInAnswer(answer) ?? throw new JsonException($"{engine.Name}/tokenize answered without tokens.");
        logger.LogDebug("Tokenized {Count} tokens on {Engine} in {Ms:F2} ms", tokens.Count, engine.Name, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return tokens;
    }

    /// <summary>The <c>tokens</c> array of a <c>/tokenize</c> answer, read in place.</summary>
    private static List<int>? TokensInAnswer(ReadOnlySpan<byte> answer)
    {
        var reader = new Utf8JsonReader(answer);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return null;
        }
        var count = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var name = reader.ValueTextEquals("tokens"u8) ? "tokens" : reader.ValueTextEquals("count"u8) ? "count" : null;
            reader.Read();
            if (name == "count" && reader.TokenType == JsonTokenType.Number)
            {
                count = reader.GetInt32();
            }
            else if (name == "tokens" && reader.TokenType == JsonTokenType.StartArray)
            {
                return ReadTokenArray(ref reader, count);
            }
            else
            {
                reader.Skip();
            }
        }
        return null;
    }

    /// <summary>Integers up to the array's end; null if anything else is in it.</summary>
    private static List<int>? ReadTokenArray(ref Utf8JsonReader reader, int capacity = 0)
    {
        var tokens = new List<int>(capacity);
        while (reader.Read() && reader.TokenType == JsonTokenType.Number)
        {
            if (!reader.TryGetInt32(out var token))
            {
                return null;
            }
            tokens.Add(token);
        }
        return reader.TokenType == JsonTokenType.EndArray ? tokens : null;
    }

    /// <summary>A JSON object body written straight into one buffer.</summary>
    private static ReadOnlyMemoryContent JsonContent(Action<Utf8JsonWriter> writeProperties, int sizeHint)
    {
        var buffer = new ArrayBufferWriter<byte>(Math.Max(256, sizeHint));
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writeProperties(writer);
            writer.WriteEndObject();
        }
        var content = new ReadOnlyMemoryContent(buffer.WrittenMemory);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        return content;
    }
}
