using System.Net.Http.Json;
using System.Text.Json.Nodes;
using VllmStack.EngineSim.Configuration;
using VllmStack.ServiceDefaults.Hashing;
using VllmStack.ServiceDefaults.Http;

namespace VllmStack.EngineSim.Network;

/// <summary>
/// The engine's side of the shared KV pool: which of a prompt's blocks the pool holds, fetching them, and writing
/// blocks out. Every call is bounded; failures mean "not in the pool" (the engine then computes, as without a pool).
/// </summary>
public sealed class KvPoolClient(HttpClient http, EngineOptions options, ILogger<KvPoolClient> logger)
{
    private readonly Uri _server = options.KvCacheServer!;

    /// <summary>Bytes one block stands for on a real GPU (the transfer time is charged for these)…</summary>
    public long BlockBytes => (long)options.BlockSize * options.KvBytesPerToken;

    /// <summary>…and the bytes actually moved, scaled down so benchmark volumes fit this machine.</summary>
    public int ScaledBlockBytes => (int)Math.Max(1, BlockBytes * options.KvScale);

    /// <summary>Which of the blocks the pool holds (all false when it cannot be asked).</summary>
    public async Task<bool[]> PresentBlocksAsync(string model, IReadOnlyList<ulong> hashes, CancellationToken cancellationToken)
    {
        var present = new bool[Math.Min(hashes.Count, 4096)];
        if (present.Length == 0)
        {
            return present;
        }
        try
        {
            using var timeout = Bounded(cancellationToken);
            using var response = await http.PostAsJsonAsync(new Uri(_server, "v1/kv/pool/exists"),
                new { model, hashes = hashes.Take(present.Length).Select(KvBlockHashes.Format) }, timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                return present;
            }
            var exists = JsonNode.Parse(await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false))!["exists"]!.AsArray();
            for (var i = 0; i < present.Length && i < exists.Count; i++)
            {
                present[i] = exists[i]!.GetValue<bool>();
            }
            return present;
        }
        catch (Exception e) when (IsTransient(e, cancellationToken))
        {
            logger.LogDebug("KV pool lookup failed: {Reason}", e.Message);
            return present;
        }
    }

    /// <summary>Fetches the blocks in one request; false when any of them could not be read.</summary>
    public async Task<bool> FetchAsync(string model, IReadOnlyList<ulong> hashes, CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = Bounded(cancellationToken);
            using var response = await http.PostAsJsonAsync(new Uri(_server, "v1/kv/pool/get"),
                new { model, hashes = hashes.Select(KvBlockHashes.Format) }, timeout.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                return false;
            }
            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
            var chunks = await ChunkFraming.ReadAsync(body, hashes.Count, timeout.Token).ConfigureAwait(false);
            return chunks.All(c => c is not null);
        }
        catch (Exception e) when (IsTransient(e, cancellationToken) || e is EndOfStreamException or IOException)
        {
            logger.LogDebug("KV pool fetch failed: {Reason}", e.Message);
            return false;
        }
    }

    /// <summary>Writes blocks in one request (keyed chunk framing); false when the pool did not take them.</summary>
    public async Task<bool> PutManyAsync(string model, IReadOnlyList<(ulong Hash, ReadOnlyMemory<byte> Chunk)> chunks, CancellationToken cancellationToken)
    {
        using var timeout = Bounded(cancellationToken);
        var body = new MemoryStream(chunks.Sum(c => 12 + c.Chunk.Length));
        await ChunkFraming.WriteKeyedAsync(body, chunks, timeout.Token).ConfigureAwait(false);
        using var content = new ReadOnlyMemoryContent(body.GetBuffer().AsMemory(0, (int)body.Length));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(ChunkFraming.ContentType);
        using var response = await http.PostAsync(new Uri(_server, $"v1/kv/pool/put?model={Uri.EscapeDataString(model)}"), content, timeout.Token).ConfigureAwait(false);
        return response.StatusCode == System.Net.HttpStatusCode.OK;
    }

    private static CancellationTokenSource Bounded(CancellationToken cancellationToken)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        source.CancelAfter(TimeSpan.FromSeconds(2));
        return source;
    }

    private static bool IsTransient(Exception e, CancellationToken cancellationToken) =>
        e is HttpRequestException or System.Text.Json.JsonException or InvalidOperationException
        || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested);
}
