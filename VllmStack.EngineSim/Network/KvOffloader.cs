using System.Threading.Channels;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;

namespace VllmStack.EngineSim.Network;

/// <summary>
/// Writes blocks the local cache evicts to the shared pool (and, with <c>--kv-store-on-compute</c>, every block as
/// soon as it is computed), so that they can be fetched later (by this engine or another) instead of recomputed. Eviction never waits for it: a bounded queue drops the oldest work when the
/// pool falls behind, counted.
/// </summary>
public sealed class KvOffloader : BackgroundService
{
    private readonly Channel<ulong> _evicted = Channel.CreateBounded<ulong>(new BoundedChannelOptions(10_000)
    {
        FullMode = BoundedChannelFullMode.DropOldest,
        SingleReader = false,
    });
    private readonly KvPoolClient _pool;
    private readonly EngineOptions _options;
    private readonly ILogger<KvOffloader> _logger;
    private const int BatchSize = 64;
    private long _written;
    private long _failed;

    public KvOffloader(KvBlockPool blocks, KvPoolClient pool, EngineOptions options, ILogger<KvOffloader> logger)
    {
        _pool = pool;
        _options = options;
        _logger = logger;
        blocks.BlockEvicted += hash => _evicted.Writer.TryWrite(hash);
        if (options.KvStoreOnCompute)
        {
            // Store on compute: every block goes out as soon as it is full, so the pool holds what a dead engine computed.
            blocks.BlockStored += hash => _evicted.Writer.TryWrite(hash);
        }
    }

    public long Written => Interlocked.Read(ref _written);

    public long Failed => Interlocked.Read(ref _failed);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(Enumerable.Range(0, 2).Select(_ => WorkAsync(stoppingToken)));

    /// <summary>Blocks evicted together go out together: one batch put of whatever is queued, up to <see cref="BatchSize"/>.</summary>
    private async Task WorkAsync(CancellationToken stoppingToken)
    {
        // Synthetic KV: the bytes stand for the block's tensors; their size is what costs time to move.
        var chunk = new byte[_pool.ScaledBlockBytes];
        Random.Shared.NextBytes(chunk);
        var batch = new List<(ulong, ReadOnlyMemory<byte>)>(BatchSize);
        while (await _evicted.Reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < BatchSize && _evicted.Reader.TryRead(out var hash))
            {
                batch.Add((hash, chunk));
            }
            if (batch.Count == 0)
            {
                continue;
            }
            try
            {
                if (await _pool.PutManyAsync(_options.PrimaryBaseModel, batch, stoppingToken).ConfigureAwait(false))
                {
                    Interlocked.Add(ref _written, batch.Count);
                }
                else
                {
                    Interlocked.Add(ref _failed, batch.Count);
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !stoppingToken.IsCancellationRequested)
            {
                if (Interlocked.Add(ref _failed, batch.Count) == batch.Count)
                {
                    _logger.LogWarning("Offloading KV blocks to the pool failed: {Reason}", e.Message);
                }
            }
        }
    }
}
