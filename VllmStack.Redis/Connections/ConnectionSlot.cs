using Microsoft.Extensions.Logging;

namespace VllmStack.Redis.Connections;

/// <summary>
/// One of the client's connections over its lifetime: opens it lazily, shares one connect attempt among all
/// callers that need it, and re-opens it after it breaks. After a failed attempt it waits (50 ms doubling to 1 s,
/// with jitter) before the next one, and meanwhile fails callers at once with the last error, so a server that is
/// down sees a trickle of attempts instead of one per command.
/// </summary>
internal sealed class ConnectionSlot : IAsyncDisposable
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(1);

    private readonly RedisConnectionOptions _options;
    private readonly int _index;
    private readonly ILogger _logger;
    private readonly CancellationToken _clientDisposing;
    private readonly Lock _gate = new();
    private RedisConnection? _connection;
    private Task<RedisConnection>? _connecting;
    private RedisConnectionException? _lastFailure;
    private long _retryAt;
    private int _failures;
    private int _generation;
    private bool _disposed;

    public ConnectionSlot(RedisConnectionOptions options, int index, ILogger logger, CancellationToken clientDisposing)
    {
        _options = options;
        _index = index;
        _logger = logger;
        _clientDisposing = clientDisposing;
    }

    /// <summary>The connection if it is open and healthy right now; never waits.</summary>
    public RedisConnection? Alive => Volatile.Read(ref _connection) is { IsAlive: true } connection ? connection : null;

    /// <summary>The open connection, or one being opened for it; fails fast while backing off after failed attempts.</summary>
    public Task<RedisConnection> GetAsync(CancellationToken cancellationToken)
    {
        if (Alive is { } alive)
        {
            return Task.FromResult(alive);
        }
        var connecting = Connect(out var backoffError);
        return connecting is null ? Task.FromException<RedisConnection>(backoffError!) : connecting.WaitAsync(cancellationToken);
    }

    /// <summary>Starts re-opening a broken connection without anyone waiting (another slot is serving meanwhile).</summary>
    public void ReconnectInBackground()
    {
        if (Alive is null)
        {
            Connect(out _);
        }
    }

    public async ValueTask DisposeAsync()
    {
        RedisConnection? connection;
        lock (_gate)
        {
            _disposed = true;
            connection = _connection;
            _connection = null;
        }
        if (connection is not null)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The current attempt, a new one, or null with the error to fail fast with while backing off.</summary>
    private Task<RedisConnection>? Connect(out RedisConnectionException? backoffError)
    {
        TaskCompletionSource<RedisConnection> attempt;
        string name;
        lock (_gate)
        {
            backoffError = null;
            ObjectDisposedException.ThrowIf(_disposed, typeof(RedisClient));
            if (_connection is { IsAlive: true } alive)
            {
                return Task.FromResult(alive);
            }
            if (_connecting is not null)
            {
                return _connecting;
            }
            var wait = _retryAt - Environment.TickCount64;
            if (_lastFailure is not null && wait > 0)
            {
                backoffError = new RedisConnectionException(_options.Endpoint,
                    $"{_lastFailure.Message} Not retrying for another {wait} ms.", _lastFailure);
                return null;
            }
            attempt = new TaskCompletionSource<RedisConnection>(TaskCreationOptions.RunContinuationsAsynchronously);
            _connecting = attempt.Task;
            name = $"#{_index}.{++_generation}";
        }
        // Started outside the lock and only after _connecting is set, so its completion can clear it safely.
        _ = RunAttemptAsync(attempt, name);
        return attempt.Task;
    }

    private async Task RunAttemptAsync(TaskCompletionSource<RedisConnection> attempt, string name)
    {
        RedisConnection? connection = null;
        RedisConnectionException? failure = null;
        try
        {
            connection = await RedisConnection.OpenAsync(_options, name, _logger, _clientDisposing).ConfigureAwait(false);
        }
        catch (RedisConnectionException e)
        {
            failure = e;
        }
        catch (OperationCanceledException) when (_clientDisposing.IsCancellationRequested)
        {
            failure = new RedisConnectionException(_options.Endpoint, $"Connecting to Redis at {_options.Endpoint} was abandoned: the client was disposed.");
        }
        catch (Exception e)
        {
            failure = new RedisConnectionException(_options.Endpoint, $"Could not connect to Redis at {_options.Endpoint}: {e.Message}", e);
        }

        bool disposed;
        int failures;
        lock (_gate)
        {
            _connecting = null;
            disposed = _disposed;
            if (connection is not null && !disposed)
            {
                _connection = connection;
                _failures = 0;
                _lastFailure = null;
            }
            else if (failure is not null)
            {
                _failures++;
                _lastFailure = failure;
                _retryAt = Environment.TickCount64 + (long)Backoff(_failures).TotalMilliseconds;
            }
            failures = _failures;
        }

        if (connection is not null && disposed)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            failure = new RedisConnectionException(_options.Endpoint, $"Connecting to Redis at {_options.Endpoint} was abandoned: the client was disposed.");
        }
        if (failure is null)
        {
            RedisLog.Connected(_logger, name, _options.Endpoint, _options.Database);
            attempt.SetResult(connection!);
            return;
        }
        if (failures <= 1)
        {
            RedisLog.ConnectFailed(_logger, name, _options.Endpoint, failure.Message);
        }
        else
        {
            RedisLog.ConnectStillFailing(_logger, name, _options.Endpoint, failures, failure.Message);
        }
        attempt.SetException(failure);
        // A background attempt has no one waiting; reading the exception keeps it from being reported as unobserved.
        _ = attempt.Task.Exception;
    }

    private static TimeSpan Backoff(int failures)
    {
        var exponential = FirstBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(failures - 1, 10));
        var capped = Math.Min(exponential, MaxBackoff.TotalMilliseconds);
        // ±20 % so that many clients of one server do not retry in lockstep.
        return TimeSpan.FromMilliseconds(capped * (0.8 + 0.4 * Random.Shared.NextDouble()));
    }
}
