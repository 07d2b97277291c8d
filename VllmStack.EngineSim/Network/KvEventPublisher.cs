using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text.Json;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.EngineSim.Network;

/// <summary>
/// Tells the cache server what this engine's prefix cache holds: block stored/evicted events, batched every
/// interval, a heartbeat when there is nothing to say, and a full report when the cache server asks for one (it
/// restarted, or forgot this engine). Generation never waits for it: events are queued, and a cache server that is
/// down costs dropped reports, counted and logged once.
/// </summary>
public sealed class KvEventPublisher : BackgroundService
{
    private static readonly TimeSpan HeartbeatEvery = TimeSpan.FromSeconds(5);
    private readonly ConcurrentQueue<(ulong Hash, bool Stored)> _events = new();
    private readonly EngineOptions _options;
    private readonly Scheduler _scheduler;
    private readonly HttpClient _http;
    private readonly ILogger<KvEventPublisher> _logger;
    private bool _needsFullReport = true;
    private bool _failing;

    public KvEventPublisher(EngineOptions options, KvBlockPool pool, Scheduler scheduler, IHttpClientFactory http, ILogger<KvEventPublisher> logger)
    {
        _options = options;
        _scheduler = scheduler;
        _logger = logger;
        _http = http.CreateClient(nameof(KvEventPublisher));
        _http.Timeout = TimeSpan.FromSeconds(2);
        pool.BlockStored += hash => _events.Enqueue((hash, true));
        pool.BlockEvicted += hash => _events.Enqueue((hash, false));
    }

    /// <summary>This engine's identity in the index: the URL routers know it by.</summary>
    public string? EngineId { get; set; }

    public long DroppedReports { get; private set; }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = TimeSpan.FromMilliseconds(_options.KvEventsIntervalMs);
        var lastSent = DateTimeOffset.MinValue;
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            if (EngineId is null)
            {
                continue;
            }
            try
            {
                if (_needsFullReport)
                {
                    // Events queued so far are covered by the snapshot.
                    _events.Clear();
                    await SendAsync(new { engine = EngineId, full = true, stored = _scheduler.CachedBlockHashes().Select(KvBlockHashes.Format) }, stoppingToken).ConfigureAwait(false);
                    lastSent = DateTimeOffset.UtcNow;
                    continue;
                }
                var stored = new List<string>();
                var evicted = new List<string>();
                while (stored.Count + evicted.Count < 50_000 && _events.TryDequeue(out var e))
                {
                    (e.Stored ? stored : evicted).Add(KvBlockHashes.Format(e.Hash));
                }
                if (stored.Count + evicted.Count > 0)
                {
                    await SendAsync(new { engine = EngineId, stored, evicted }, stoppingToken).ConfigureAwait(false);
                    lastSent = DateTimeOffset.UtcNow;
                }
                else if (DateTimeOffset.UtcNow - lastSent > HeartbeatEvery)
                {
                    await SendAsync(new { engine = EngineId }, stoppingToken, "v1/kv/heartbeat").ConfigureAwait(false);
                    lastSent = DateTimeOffset.UtcNow;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException && !stoppingToken.IsCancellationRequested)
            {
                DroppedReports++;
                // What was lost is unknown now: send everything once the cache server answers again.
                _needsFullReport = true;
                if (!_failing)
                {
                    _failing = true;
                    _logger.LogWarning("KV events cannot reach the cache server at {Url}: {Reason}; retrying with a full report", _options.KvCacheServer, e.Message);
                }
            }
        }
    }

    private async Task SendAsync(object body, CancellationToken cancellationToken, string path = "v1/kv/events")
    {
        using var response = await _http.PostAsJsonAsync(new Uri(_options.KvCacheServer!, path), body, cancellationToken).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        var answer = await response.Content.ReadFromJsonAsync<ResyncAnswer>(cancellationToken).ConfigureAwait(false);
        _needsFullReport = answer?.Resync == true;
        if (_failing)
        {
            _failing = false;
            _logger.LogInformation("KV events reach the cache server at {Url} again", _options.KvCacheServer);
        }
    }

    private sealed record ResyncAnswer(bool Resync);
}
