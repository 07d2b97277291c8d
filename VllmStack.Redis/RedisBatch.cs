using VllmStack.Redis.Connections;
using VllmStack.Redis.Protocol;

namespace VllmStack.Redis;

/// <summary>
/// Commands collected to be sent together: <see cref="ExecuteAsync"/> queues them as one unit on one connection
/// (one write, no other caller's commands in between) and waits for all replies within one timeout. Each adding
/// method returns a task that completes when that command's reply arrives, i.e. only after ExecuteAsync; an error
/// reply faults only its own command's task. Not atomic (no MULTI/EXEC): other clients may run commands in between.
/// A batch is not thread safe and runs once.
/// </summary>
/// <example><code>
/// var batch = client.CreateBatch();
/// var puts = chunks.Select(c => batch.SetAsync(c.Key, c.Bytes, ttl)).ToList();
/// await batch.ExecuteAsync(cancellationToken);
/// await Task.WhenAll(puts);
/// </code></example>
public sealed class RedisBatch
{
    private readonly RedisClient _client;
    private readonly List<PendingReply> _requests = [];
    private bool _executed;

    internal RedisBatch(RedisClient client) => _client = client;

    /// <summary>How many commands have been added.</summary>
    public int Count => _requests.Count;

    public Task<byte[]?> GetAsync(RedisKey key) => Add(Commands.Get(key), Replies.Bytes);

    public Task<bool> SetAsync(RedisKey key, ReadOnlyMemory<byte> value, TimeSpan? expiry = null, bool onlyIfNotExists = false) =>
        Add(Commands.Set(key, value, expiry, onlyIfNotExists), Replies.SetResult);

    public Task<long> DeleteAsync(params RedisKey[] keys) => Add(Commands.Delete(keys), Replies.Integer);

    public Task<long> ExistsAsync(params RedisKey[] keys) => Add(Commands.Exists(keys), Replies.Integer);

    public Task<bool> ExpireAsync(RedisKey key, TimeSpan expiry) => Add(Commands.Expire(key, expiry), Replies.IntegerIsPositive);

    public Task<long> IncrementByAsync(RedisKey key, long increment) => Add(Commands.IncrementBy(key, increment), Replies.Integer);

    public Task<bool> HashSetAsync(RedisKey key, string field, ReadOnlyMemory<byte> value) =>
        Add(Commands.HashSet(key, field, value), Replies.IntegerIsPositive);

    public Task<byte[]?> HashGetAsync(RedisKey key, string field) => Add(Commands.HashGet(key, field), Replies.Bytes);

    public Task<byte[]?[]> HashGetManyAsync(RedisKey key, IEnumerable<string> fields) => Add(Commands.HashGetMany(key, fields), Replies.BytesArray);

    public Task<long> SetAddAsync(RedisKey key, params string[] members) => Add(Commands.SetAdd(key, members), Replies.Integer);

    public Task<bool> SortedSetAddAsync(RedisKey key, string member, double score) =>
        Add(Commands.SortedSetAdd(key, member, score), Replies.IntegerIsPositive);

    /// <summary>Any command, as <see cref="RedisClient.ExecuteAsync(string, object[])"/>.</summary>
    public Task<RedisReply> CommandAsync(string command, params object[] args) => Add(Commands.Generic(command, args), Replies.Raw);

    /// <summary>
    /// Sends every added command and waits for all replies. Throws <see cref="RedisConnectionException"/> or
    /// <see cref="RedisTimeoutException"/> when the batch as a whole failed (the commands' tasks fail likewise);
    /// server error replies do not throw here, only from their own command's task.
    /// </summary>
    public async Task ExecuteAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        if (_executed)
        {
            throw new InvalidOperationException("This batch has already been executed; create a new one.");
        }
        _executed = true;
        if (_requests.Count == 0)
        {
            return;
        }
        await _client.SendAsync([.. _requests], timeout ?? _client.Options.CommandTimeout, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Shorthand for <see cref="ExecuteAsync(TimeSpan?, CancellationToken)"/> with the client's command timeout.</summary>
    public Task ExecuteAsync(CancellationToken cancellationToken) => ExecuteAsync(null, cancellationToken);

    private Task<T> Add<T>(RedisCommand command, Func<RedisReply, T> map)
    {
        if (_executed)
        {
            command.Release();
            throw new InvalidOperationException("Commands cannot be added to a batch that has been executed.");
        }
        var request = new PendingReply(command);
        _requests.Add(request);
        return Complete(request, command.Name, map);
    }

    private async Task<T> Complete<T>(PendingReply request, string name, Func<RedisReply, T> map)
    {
        var reply = await request.Task.ConfigureAwait(false);
        return _client.Map(reply, name, map);
    }
}
