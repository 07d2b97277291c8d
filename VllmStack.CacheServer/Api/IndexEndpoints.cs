using System.Diagnostics;
using System.Text.Json;
using VllmStack.CacheServer.Configuration;
using VllmStack.CacheServer.Index;
using VllmStack.CacheServer.Pool;
using VllmStack.CacheServer.Stats;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.CacheServer.Api;

/// <summary>
/// Engines report what their caches hold (<c>POST /v1/kv/events</c>, <c>/v1/kv/heartbeat</c>); routers ask which
/// engine holds a prompt's prefix (<c>POST /v1/kv/lookup</c>). Block hashes are 16 hex digits (see KvBlockHashes).
/// </summary>
public static class IndexEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/kv/events", async (HttpContext context, KvIndex index, CacheMetrics metrics) =>
        {
            using var body = await JsonBody.ReadAsync(context);
            var root = body.RootElement;
            var engine = JsonBody.RequiredString(root, "engine");
            var stored = JsonBody.Hashes(root, "stored");
            var evicted = JsonBody.Hashes(root, "evicted");
            var full = root.TryGetProperty("full", out var f) && f.ValueKind == JsonValueKind.True;
            var complete = index.Apply(engine, stored, evicted, full);
            metrics.Events(stored.Count, evicted.Count);
            // An engine this server does not know (it restarted, or the engine's TTL ran out) must resend all it holds.
            return Results.Json(new { resync = !complete }, JsonBody.Options);
        });
        app.MapPost("/v1/kv/heartbeat", async (HttpContext context, KvIndex index) =>
        {
            using var body = await JsonBody.ReadAsync(context);
            var engine = JsonBody.RequiredString(body.RootElement, "engine");
            var known = index.Engines().Any(e => e.Engine == engine);
            index.Heartbeat(engine);
            return Results.Json(new { resync = !known }, JsonBody.Options);
        });
        app.MapPost("/v1/kv/lookup", async (HttpContext context, KvIndex index, KvChunkPool pool, CacheServerOptions options, CacheMetrics metrics) =>
        {
            var started = Stopwatch.GetTimestamp();
            using var body = await JsonBody.ReadAsync(context);
            var root = body.RootElement;
            var model = JsonBody.RequiredString(root, "model");
            var lora = root.TryGetProperty("lora", out var l) && l.ValueKind == JsonValueKind.String ? l.GetString() : null;
            var tokens = JsonBody.Tokens(root, "tokens");
            var blocks = KvBlockHashes.Compute(KvBlockHashes.Root(model, lora), tokens, options.BlockSize);
            var local = index.Match(blocks);
            var poolBlocks = await pool.LeadingChunksAsync(model, blocks, context.RequestAborted);
            var bestLocal = local.Count == 0 ? 0 : local.Max(m => m.Blocks);
            metrics.Lookup(tokens.Length, bestLocal * options.BlockSize, poolBlocks * options.BlockSize, Stopwatch.GetElapsedTime(started).TotalSeconds);
            return Results.Json(new LookupResponse(
                options.BlockSize,
                tokens.Length,
                [.. local.OrderByDescending(m => m.Blocks).Select(m => new EngineMatch(m.Engine, m.Blocks * options.BlockSize))],
                poolBlocks * options.BlockSize,
                pool.Available), JsonBody.Options);
        });
        app.MapGet("/v1/kv/engines", (KvIndex index) =>
            Results.Json(index.Engines().Select(e => new { engine = e.Engine, blocks = e.Blocks, last_seen = e.LastSeen }), JsonBody.Options));
    }

    /// <summary>Per engine, the leading tokens it holds locally; the pool's leading tokens; whether the pool answered.</summary>
    public sealed record LookupResponse(int BlockSize, int TotalTokens, IReadOnlyList<EngineMatch> Engines, int PoolTokens, bool PoolAvailable);
}

/// <summary>Request bodies: JSON objects whose mistakes become a 400 that names the field.</summary>
internal static class JsonBody
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static async Task<JsonDocument> ReadAsync(HttpContext context)
    {
        try
        {
            var document = await JsonDocument.ParseAsync(context.Request.Body, default, context.RequestAborted);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                document.Dispose();
                throw new BadRequestException("The request body must be a JSON object.");
            }
            return document;
        }
        catch (JsonException e)
        {
            throw new BadRequestException($"The request body is not valid JSON: {e.Message}");
        }
    }

    public static string RequiredString(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } text
            ? text
            : throw new BadRequestException($"'{name}' is required and must be a non-empty string.", name);

    public static List<ulong> Hashes(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return [];
        }
        if (value.ValueKind != JsonValueKind.Array)
        {
            throw new BadRequestException($"'{name}' must be an array of 16-hex-digit block hashes.", name);
        }
        var result = new List<ulong>(value.GetArrayLength());
        foreach (var item in value.EnumerateArray())
        {
            result.Add(item.ValueKind == JsonValueKind.String && KvBlockHashes.TryParse(item.GetString()!, out var hash)
                ? hash
                : throw new BadRequestException($"'{name}' must be an array of 16-hex-digit block hashes; '{item.GetRawText()}' is not one.", name));
        }
        return result;
    }

    public static int[] Tokens(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.Array)
        {
            throw new BadRequestException($"'{name}' is required and must be an array of token ids.", name);
        }
        var tokens = new int[value.GetArrayLength()];
        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            tokens[i++] = item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out var id)
                ? id
                : throw new BadRequestException($"'{name}' must hold integer token ids.", name);
        }
        return tokens;
    }
}

/// <summary>A client's mistake: answered with 400 and an OpenAI-style error.</summary>
public sealed class BadRequestException(string message, string? param = null) : Exception(message)
{
    public string? Param { get; } = param;
}
