using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using VllmStack.Redis.Protocol;

namespace VllmStack.Redis.Connections;

/// <summary>
/// One TCP connection with many commands in flight. Callers serialise their commands themselves and queue them;
/// a single writer loop sends whatever is queued in one gathered write and records each command as awaiting a
/// reply just before it goes out; a single reader loop parses replies and completes the oldest awaiting command
/// (RESP2 replies come back in request order). Any failure breaks the whole connection: every command queued or
/// in flight fails with <see cref="RedisConnectionException"/>, and the owner opens a new connection.
/// </summary>
internal sealed class RedisConnection : IAsyncDisposable
{
    private const int ReceiveBufferSize = 64 * 1024;
    private const int MinimumReceiveSize = 4 * 1024;
    private const int MaxSegmentsPerWrite = 256;
    private const int MaxBytesPerWrite = 1024 * 1024;

    private readonly Socket _socket;
    private readonly ILogger _logger;
    private readonly Channel<PendingReply[]> _outgoing =
        Channel.CreateUnbounded<PendingReply[]>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Queue<PendingReply> _awaitingReply = new();
    private readonly Lock _gate = new();
    private readonly RespParser _parser = new();
    private RedisConnectionException? _failure;
    private Task _readLoop = Task.CompletedTask;
    private Task _writeLoop = Task.CompletedTask;

    private RedisConnection(Socket socket, string endpoint, string name, ILogger logger)
    {
        _socket = socket;
        Endpoint = endpoint;
        Name = name;
        _logger = logger;
    }

    public string Endpoint { get; }

    /// <summary>For logs: which slot and which reconnect generation, e.g. <c>#1.3</c>.</summary>
    public string Name { get; }

    public bool IsAlive => Volatile.Read(ref _failure) is null;

    /// <summary>Why the connection broke; null while it is alive.</summary>
    public RedisConnectionException? Failure => Volatile.Read(ref _failure);

    /// <summary>Connects, starts the loops and sends AUTH and SELECT; all within <see cref="RedisConnectionOptions.ConnectTimeout"/>.</summary>
    public static async Task<RedisConnection> OpenAsync(RedisConnectionOptions options, string name, ILogger logger, CancellationToken cancellationToken)
    {
        var endpoint = options.Endpoint;
        var clock = Stopwatch.StartNew();
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(options.ConnectTimeout);
            try
            {
                await socket.ConnectAsync(options.Host, options.Port, timeout.Token).ConfigureAwait(false);
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            }
            catch (Exception e)
            {
                socket.Dispose();
                cancellationToken.ThrowIfCancellationRequested();
                throw e switch
                {
                    OperationCanceledException => new RedisConnectionException(endpoint,
                        $"Could not connect to Redis at {endpoint}: no connection within {options.ConnectTimeout.TotalMilliseconds:0} ms."),
                    SocketException socketError => new RedisConnectionException(endpoint,
                        $"Could not connect to Redis at {endpoint}: {socketError.Message} ({socketError.SocketErrorCode}).", socketError),
                    _ => new RedisConnectionException(endpoint, $"Could not connect to Redis at {endpoint}: {e.Message}", e),
                };
            }
        }

        var connection = new RedisConnection(socket, endpoint, name, logger);
        connection.Start();
        try
        {
            await connection.HandshakeAsync(options, options.ConnectTimeout - clock.Elapsed, cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Queues a command (or a batch, kept together in one write); false if the connection is already broken.</summary>
    public bool TrySend(PendingReply[] requests) => _outgoing.Writer.TryWrite(requests);

    /// <summary>
    /// Waits for a reply. On timeout the request fails with <see cref="RedisTimeoutException"/> and the connection is
    /// dropped, because a reply that arrives later would be taken for the next command's. On cancellation the request
    /// is abandoned: its reply is still read, in order, and thrown away, so the connection stays usable.
    /// </summary>
    /// <param name="request">A request queued on this connection.</param>
    /// <param name="wait">How long this wait may take (what is left of the deadline).</param>
    /// <param name="timeout">The configured timeout, for the message (in a batch, later requests wait less than it).</param>
    /// <param name="cancellationToken">Abandons the request.</param>
    public async Task<RedisReply> WaitAsync(PendingReply request, TimeSpan wait, TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            return await request.Task.WaitAsync(wait, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            var error = new RedisTimeoutException(Endpoint, request.Name, timeout);
            if (!request.Fail(error))
            {
                // The reply arrived in the same instant the timer fired: it is valid, use it.
                return await request.Task.ConfigureAwait(false);
            }
            Abort($"{request.Name} got no reply within {timeout.TotalMilliseconds:0} ms, so later replies could not be matched to their commands", null);
            throw error;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            request.TrySetCanceled(cancellationToken);
            throw;
        }
    }

    /// <summary>Breaks the connection once: closes the socket and fails everything queued or awaiting a reply.</summary>
    public void Abort(string reason, Exception? cause, bool quietly = false)
    {
        var failure = new RedisConnectionException(Endpoint, $"Connection to Redis at {Endpoint} was lost: {reason}.", cause);
        PendingReply[] orphans;
        lock (_gate)
        {
            if (_failure is not null)
            {
                return;
            }
            Volatile.Write(ref _failure, failure);
            orphans = [.. _awaitingReply];
            _awaitingReply.Clear();
        }
        if (quietly)
        {
            RedisLog.ConnectionClosed(_logger, Name, Endpoint, reason);
        }
        else
        {
            RedisLog.ConnectionLost(_logger, Name, Endpoint, reason);
        }
        _outgoing.Writer.TryComplete();
        _socket.Dispose();
        foreach (var request in orphans)
        {
            request.Fail(failure);
        }
        // The writer loop may be taking items at the same time; each item is handled by whoever reads it.
        while (_outgoing.Reader.TryRead(out var queued))
        {
            foreach (var request in queued)
            {
                request.TakeCommand()?.Release();
                request.Fail(failure);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        Abort("the client closed it", null, quietly: true);
        // The loops end as soon as the socket is closed and never throw.
        await Task.WhenAll(_readLoop, _writeLoop).ConfigureAwait(false);
    }

    private void Start()
    {
        _readLoop = Task.Run(ReadLoopAsync);
        _writeLoop = Task.Run(WriteLoopAsync);
    }

    /// <summary>AUTH and SELECT are pipelined together before the connection is handed to anyone.</summary>
    private async Task HandshakeAsync(RedisConnectionOptions options, TimeSpan timeLeft, CancellationToken cancellationToken)
    {
        var steps = new List<(string Description, PendingReply Request)>();
        if (options.Password is not null)
        {
            var auth = options.User is null
                ? new RedisCommand("AUTH", 1).Add(options.Password)
                : new RedisCommand("AUTH", 2).Add(options.User).Add(options.Password);
            steps.Add(("AUTH", new PendingReply(auth.Complete())));
        }
        if (options.Database != 0)
        {
            steps.Add(($"SELECT {options.Database}", new PendingReply(new RedisCommand("SELECT", 1).Add(options.Database).Complete())));
        }
        if (steps.Count == 0)
        {
            return;
        }
        if (!TrySend([.. steps.Select(step => step.Request)]))
        {
            throw Failure!;
        }
        var deadline = Stopwatch.StartNew();
        foreach (var (description, request) in steps)
        {
            RedisReply reply;
            try
            {
                reply = await WaitAsync(request, Max(timeLeft - deadline.Elapsed, TimeSpan.FromMilliseconds(1)), timeLeft, cancellationToken).ConfigureAwait(false);
            }
            catch (RedisTimeoutException timeout)
            {
                throw new RedisConnectionException(Endpoint,
                    $"Could not connect to Redis at {Endpoint}: {description} got no reply within the connect timeout.", timeout);
            }
            catch (RedisConnectionException lost)
            {
                throw new RedisConnectionException(Endpoint, $"Could not connect to Redis at {Endpoint}: {lost.Message}", lost);
            }
            if (reply.IsError)
            {
                throw new RedisConnectionException(Endpoint,
                    $"Could not connect to Redis at {Endpoint}: {description} was rejected: {reply.Text}",
                    new RedisServerException(Endpoint, description, reply.Text));
            }
        }
    }

    private async Task WriteLoopAsync()
    {
        var segments = new List<ArraySegment<byte>>();
        var written = new List<RedisCommand>();
        var reader = _outgoing.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                long bytes = 0;
                while (bytes < MaxBytesPerWrite && segments.Count < MaxSegmentsPerWrite && reader.TryRead(out var requests))
                {
                    foreach (var request in requests)
                    {
                        if (request.TakeCommand() is not { } command)
                        {
                            continue;
                        }
                        if (request.Task.IsCompleted)
                        {
                            // Cancelled while queued: nobody wants the reply, so the server never sees it.
                            command.Release();
                            continue;
                        }
                        lock (_gate)
                        {
                            if (_failure is not null)
                            {
                                command.Release();
                                request.Fail(_failure);
                                continue;
                            }
                            // Recorded before the bytes leave, so the reply can never arrive first.
                            _awaitingReply.Enqueue(request);
                        }
                        segments.Add(command.Payload);
                        written.Add(command);
                        bytes += command.Length;
                    }
                }
                if (segments.Count > 0)
                {
                    await SendAllAsync(segments).ConfigureAwait(false);
                }
                ReleaseAll(written);
                segments.Clear();
            }
        }
        catch (Exception e)
        {
            Abort(DescribeIoFailure("sending", e), e is ObjectDisposedException ? null : e);
        }
        finally
        {
            ReleaseAll(written);
        }
    }

    private async Task SendAllAsync(List<ArraySegment<byte>> segments)
    {
        while (true)
        {
            var sent = await _socket.SendAsync(segments, SocketFlags.None).ConfigureAwait(false);
            // A stream socket normally sends everything; if not, drop what went and send the rest.
            while (sent > 0 && segments.Count > 0)
            {
                if (sent >= segments[0].Count)
                {
                    sent -= segments[0].Count;
                    segments.RemoveAt(0);
                }
                else
                {
                    segments[0] = segments[0][sent..];
                    sent = 0;
                }
            }
            if (segments.Count == 0)
            {
                return;
            }
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = ArrayPool<byte>.Shared.Rent(ReceiveBufferSize);
        int start = 0, end = 0;
        try
        {
            while (true)
            {
                int received;
                if (_parser.IsAwaitingBulkData && start == end)
                {
                    // The rest of a large value goes straight from the socket into its final array.
                    received = await _socket.ReceiveAsync(_parser.BulkDestination, SocketFlags.None).ConfigureAwait(false);
                    if (received > 0)
                    {
                        _parser.BulkDataReceived(received);
                    }
                }
                else
                {
                    if (buffer.Length - end < MinimumReceiveSize)
                    {
                        // Leftovers are at most one unfinished line (RespParser.MaxLineLength), so moving them frees room.
                        buffer.AsSpan(start, end - start).CopyTo(buffer);
                        end -= start;
                        start = 0;
                    }
                    received = await _socket.ReceiveAsync(buffer.AsMemory(end), SocketFlags.None).ConfigureAwait(false);
                    end += received;
                }
                if (received == 0)
                {
                    Abort("the server closed the connection", null);
                    return;
                }
                while (true)
                {
                    var complete = _parser.TryParse(buffer.AsSpan(start, end - start), out var consumed, out var reply);
                    start += consumed;
                    if (!complete)
                    {
                        break;
                    }
                    Deliver(reply!);
                }
                if (start == end)
                {
                    start = end = 0;
                }
            }
        }
        catch (RespProtocolException e)
        {
            Abort(e.Message, e);
        }
        catch (Exception e)
        {
            Abort(DescribeIoFailure("receiving", e), e is ObjectDisposedException ? null : e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Deliver(RedisReply reply)
    {
        PendingReply? request;
        lock (_gate)
        {
            _awaitingReply.TryDequeue(out request);
        }
        if (request is null)
        {
            throw new RespProtocolException($"a reply ({reply.Describe()}) arrived with no command waiting for it");
        }
        // False when the caller gave up (cancelled or timed out); the reply is dropped and order is kept.
        request.TrySetResult(reply);
    }

    private static void ReleaseAll(List<RedisCommand> commands)
    {
        foreach (var command in commands)
        {
            command.Release();
        }
        commands.Clear();
    }

    private static string DescribeIoFailure(string activity, Exception e) => e switch
    {
        SocketException socketError => $"{activity} failed: {socketError.Message} ({socketError.SocketErrorCode})",
        ObjectDisposedException => "the socket was closed",
        _ => $"{activity} failed: {e.Message}",
    };

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
