using Microsoft.AspNetCore.Mvc;
using VllmStack.CacheServer.Pool;
using VllmStack.ServiceDefaults.Hashing;
using VllmStack.ServiceDefaults.Http;

namespace VllmStack.CacheServer.Api;

/// <summary>
/// The KV chunk pool over HTTP: <c>PUT|GET|HEAD|DELETE /v1/kv/pool/{model}/{hash}</c> with raw bytes, and
/// <c>POST /v1/kv/pool/exists</c>, <c>/get</c> and <c>/put</c> for many at once. A put while Redis is down is dropped (202, counted).
/// </summary>
public static class PoolEndpoints
{
    /// <summary>Largest chunk accepted (a 256-token chunk of a 70B model is about 80 MiB).</summary>
    public const long MaxChunkBytes = 256L * 1024 * 1024;

    /// <summary>Most chunks, and bytes, in one batch put.</summary>
    public const int MaxChunksPerPut = 4096;

    public const long MaxPutBodyBytes = 1024L * 1024 * 1024;

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPut("/v1/kv/pool/{model}/{hash}", async (string model, string hash, HttpContext context, KvChunkPool pool) =>
        {
            var key = ParseHash(hash);
            model = ModelName(model);
            var length = context.Request.ContentLength ?? throw new BadRequestException("A chunk needs a Content-Length.");
            if (length > MaxChunkBytes)
            {
                throw new BadRequestException($"A chunk may be at most {MaxChunkBytes} bytes, not {length}.");
            }
            // One copy: the body lands in an array of exactly its size, which goes to Redis as it is.
            var chunk = new byte[length];
            await context.Request.Body.ReadExactlyAsync(chunk, context.RequestAborted);
            return await pool.PutAsync(model, key, chunk, context.RequestAborted) switch
            {
                PutResult.Stored => Results.StatusCode(StatusCodes.Status201Created),
                PutResult.AlreadyPresent => Results.Ok(),
                _ => Results.Json(new { stored = false, reason = "the pool's Redis is unavailable; the chunk was dropped" }, JsonBody.Options, statusCode: StatusCodes.Status202Accepted),
            };
        }).WithMetadata(new RequestSizeLimitAttribute(MaxChunkBytes));
        app.MapGet("/v1/kv/pool/{model}/{hash}", async (string model, string hash, HttpContext context, KvChunkPool pool) =>
            await pool.GetAsync(ModelName(model), ParseHash(hash), context.RequestAborted) is { } chunk
                ? Results.Bytes(chunk, "application/octet-stream")
                : NotFound(hash));
        app.MapMethods("/v1/kv/pool/{model}/{hash}", ["HEAD"], async (string model, string hash, HttpContext context, KvChunkPool pool) =>
            (await pool.ExistsAsync(ModelName(model), [ParseHash(hash)], context.RequestAborted))[0] ? Results.Ok() : Results.NotFound());
        app.MapDelete("/v1/kv/pool/{model}/{hash}", async (string model, string hash, HttpContext context, KvChunkPool pool) =>
            await pool.DeleteAsync(ModelName(model), ParseHash(hash), context.RequestAborted) ? Results.NoContent() : NotFound(hash));
        app.MapPost("/v1/kv/pool/exists", async (HttpContext context, KvChunkPool pool) =>
        {
            using var body = await JsonBody.ReadAsync(context);
            var model = JsonBody.RequiredString(body.RootElement, "model");
            var hashes = JsonBody.Hashes(body.RootElement, "hashes");
            if (hashes.Count > 10_000)
            {
                throw new BadRequestException("At most 10,000 hashes per request.", "hashes");
            }
            return Results.Json(new { exists = await pool.ExistsAsync(model, hashes, context.RequestAborted) }, JsonBody.Options);
        });
        // Many chunks written at once: ?model=NAME, the body keyed chunk framing (hash, length, bytes per chunk).
        app.MapPost("/v1/kv/pool/put", async (HttpContext context, KvChunkPool pool) =>
        {
            var model = context.Request.Query["model"].ToString() is { Length: > 0 } name
                ? name
                : throw new BadRequestException("'model' is required as a query parameter.", "model");
            if (context.Request.ContentType?.StartsWith(ChunkFraming.ContentType, StringComparison.OrdinalIgnoreCase) != true)
            {
                throw new BadRequestException($"The body must be {ChunkFraming.ContentType} (keyed chunk framing).");
            }
            List<(ulong Hash, byte[] Chunk)> chunks;
            try
            {
                chunks = await ChunkFraming.ReadKeyedAsync(context.Request.Body, MaxChunksPerPut, MaxChunkBytes, context.RequestAborted);
            }
            catch (InvalidDataException e)
            {
                throw new BadRequestException(e.Message);
            }
            var results = await pool.PutManyAsync(model, [.. chunks.Select(c => (c.Hash, (ReadOnlyMemory<byte>)c.Chunk))], context.RequestAborted);
            var dropped = results.Count(r => r == PutResult.Dropped);
            return Results.Json(new
            {
                stored = results.Count(r => r == PutResult.Stored),
                present = results.Count(r => r == PutResult.AlreadyPresent),
                dropped,
            }, JsonBody.Options, statusCode: dropped > 0 ? StatusCodes.Status202Accepted : StatusCodes.Status200OK);
        }).WithMetadata(new RequestSizeLimitAttribute(MaxPutBodyBytes));
        // Many chunks at once: the body is, per requested hash in order, a 4-byte big-endian length (-1: missing) then the bytes.
        app.MapPost("/v1/kv/pool/get", async (HttpContext context, KvChunkPool pool) =>
        {
            using var body = await JsonBody.ReadAsync(context);
            var model = JsonBody.RequiredString(body.RootElement, "model");
            var hashes = JsonBody.Hashes(body.RootElement, "hashes");
            if (hashes.Count > 4096)
            {
                throw new BadRequestException("At most 4,096 hashes per request.", "hashes");
            }
            var chunks = await pool.GetManyAsync(model, hashes, context.RequestAborted);
            context.Response.ContentType = ChunkFraming.ContentType;
            await ChunkFraming.WriteAsync(context.Response.Body, chunks, context.RequestAborted);
            return Results.Empty;
        });
        app.MapGet("/v1/kv/pool", async (HttpContext context, KvChunkPool pool) =>
        {
            var (bytes, chunks) = await pool.UsageAsync(context.RequestAborted);
            return Results.Json(new { bytes, chunks }, JsonBody.Options);
        });
    }

    /// <summary>Model names such as <c>org/name</c> travel escaped in the path (<c>org%2Fname</c>); the key uses the name itself.</summary>
    private static string ModelName(string routeValue) => Uri.UnescapeDataString(routeValue);

    private static ulong ParseHash(string text) =>
        KvBlockHashes.TryParse(text, out var hash) ? hash : throw new BadRequestException($"'{text}' is not a 16-hex-digit block hash.", "hash");

    private static IResult NotFound(string hash) => ErrorResults.Error(404, $"No chunk {hash} in the pool.");
}
