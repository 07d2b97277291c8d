using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VllmStack.Redis.Connections;
using VllmStack.Redis.Protocol;

namespace VllmStack.Redis;

/// <summary>
/// A RESP2 client: thread safe, meant to live as long as the application. Commands from concurrent callers are
/// pipelined over a few TCP connections (round robin), each connection opened on first use with AUTH and SELECT
/// and re-opened after it breaks. Every command is bounded by <see cref="RedisConnectionOptions.CommandTimeout"/>.
/// Errors: <see cref="RedisConnectionException"/> (unreachable, handshake refused, connection lost),
/// <see cref="RedisTimeoutException"/>, <see cref="RedisServerException"/> (error replies).
/// </summary>
public sealed partial class RedisClient : IAsyncDisposable
{
    private static readonly TimeSpan MaxTimeout = TimeSpan.FromDays(1);

    private readonly ConnectionSlot[] _slots;
    private readonly CancellationTokenSource _disposing = new();
    private int _next = -1;
    private int _disposed;

    public RedisClient(RedisConnectionOptions options, ILogger<RedisClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        ILogger log = logger ?? (ILogger)NullLogger.Instance;
        _slots = new ConnectionSlot[options.Connections];
        for (var i = 0; i < _slots.Length; i++)
        {
            _slots[i] = new ConnectionSlot(options, i, log, _disposing.Token);
        }
    }

    /// <summary>From a connection string such as <c>ConnectionStrings__cache</c> (see <see cref="RedisConnectionOptions.Parse"/>).</summary>
    public RedisClient(string connectionString, ILogger<RedisClient>? logger = null)
        : this(RedisConnectionOptions.Parse(connectionString), logger)
    {
    }

    public RedisConnectionOptions Options { get; }

    /// <summary>Sends any command. Arguments may be strings (UTF-8), byte[], ReadOnlyMemory&lt;byte&gt;, <see cref="RedisKey"/> or numbers;
    /// subcommands are arguments (<c>ExecuteAsync("CONFIG", "GET", "maxmemory")</c>).</summary>
    public Task<RedisReply> ExecuteAsync(string command, params object[] args) => ExecuteAsync(command, args, timeout: null, CancellationToken.None);

    /// <summary>Sends any command, with its own timeout (e.g. for blocking commands) and cancellation.</summary>
    public Task<RedisReply> ExecuteAsync(string command, IReadOnlyList<object> args, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        RunAsync(Commands.Generic(command, args), Replies.Raw, timeout, cancellationToken);

    /// <summary>Collects commands to send together in one write on one connection; see <see cref="RedisBatch"/>.</summary>
    public RedisBatch CreateBatch() => new(this);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _disposing.CancelAsync().ConfigureAwait(false);
        foreach (var slot in _slots)
        {
            await slot.DisposeAsync().ConfigureAwait(false);
        }
        // _disposing is left undisposed on purpose: a connect attempt that is still unwinding may link to its
        // (cancelled) token, and it holds no timer or wait handle that would need releasing.
    }

    /// <summary>Sends one command and maps its reply; error replies become <see cref="RedisServerException"/>.</summary>
    internal async Task<T> RunAsync<T>(RedisCommand command, Func<RedisReply, T> map, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        var request = new PendingReply(command);
        var reply = await SendAsync([request], timeout ?? Options.CommandTimeout, cancellationToken).ConfigureAwait(false);
        return Map(reply, command.Name, map);
    }

    /// <summary>
    /// Queues requests together on one connection and waits for all their replies within one timeout. Returns the
    /// first request's reply (the single-command case); batch callers read each request's own task.
    /// </summary>
    internal async Task<RedisReply> SendAsync(PendingReply[] requests, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (timeout <= TimeSpan.Zero || timeout > MaxTimeout)
        {
            foreach (var request in requests)
            {
                request.TakeCommand()?.Release();
            }
            // Every command has a bound; "infinite" is not one.
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, $"A command timeout must be positive and at most {MaxTimeout}.");
        }
        RedisConnection connection;
        try
        {
            connection = await QueueAsync(requests, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Never queued: the buffers are still ours, and nothing was sent.
            foreach (var request in requests)
            {
                request.TakeCommand()?.Release();
            }
            Abandon(requests, e, cancellationToken);
            throw;
        }
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        try
        {
            foreach (var request in requests)
            {
                var left = TimeSpan.FromMilliseconds(Math.Max(1, deadline - Environment.TickCount64));
                await connection.WaitAsync(request, left, timeout, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            // A timeout or a lost connection has already failed the rest; a cancellation abandons them too.
            Abandon(requests, e, cancellationToken);
            throw;
        }
        return await requests[0].Task.ConfigureAwait(false);
    }

    private static void Abandon(PendingReply[] requests, Exception error, CancellationToken cancellationToken)
    {
        foreach (var request in requests)
        {
            if (error is OperationCanceledException)
            {
                request.TrySetCanceled(cancellationToken);
            }
            else
            {
                request.Fail(error);
            }
        }
    }

    internal T Map<T>(RedisReply reply, string command, Func<RedisReply, T> map)
    {
        if (reply.IsError)
        {
            throw new RedisServerException(Options.Endpoint, command, reply.Text);
        }
        try
        {
            return map(reply);
        }
        catch (RedisProtocolException e)
        {
            throw new RedisProtocolException($"Redis {Options.Endpoint}: {command}: {e.Message}");
        }
    }

    /// <summary>
    /// Round robin over the slots, preferring a live connection when the chosen one is broken (and reopening that
    /// one in the background). A connection that breaks between being picked and queuing is retried once.
    /// </summary>
    private async Task<RedisConnection> QueueAsync(PendingReply[] requests, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            cancellationToken.ThrowIfCancellationRequested();
            var first = (int)((uint)Interlocked.Increment(ref _next) % (uint)_slots.Length);
            RedisConnection? connection = null;
            for (var i = 0; i < _slots.Length && connection is null; i++)
            {
                connection = _slots[(first + i) % _slots.Length].Alive;
            }
            if (connection is null)
            {
                connection = await _slots[first].GetAsync(cancellationToken).ConfigureAwait(false);
            }
            else if (_slots[first].Alive is null)
            {
                _slots[first].ReconnectInBackground();
            }
            if (connection.TrySend(requests))
            {
                return connection;
            }
            if (attempt > 0)
            {
                throw connection.Failure ?? new RedisConnectionException(Options.Endpoint, $"Connection to Redis at {Options.Endpoint} was lost.");
            }
        }
    }
}
