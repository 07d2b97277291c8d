using System.Globalization;

namespace VllmStack.Redis.Protocol;

/// <summary>
/// How each typed helper is spelled on the wire. Shared by <see cref="RedisClient"/> and <see cref="RedisBatch"/>
/// so a command means the same thing whether it is sent alone or in a batch.
/// </summary>
internal static class Commands
{
    public static RedisCommand Ping() => new RedisCommand("PING", 0).Complete();

    public static RedisCommand Get(RedisKey key) => new RedisCommand("GET", 1).Add(key).Complete();

    /// <summary><c>SET key value [PX ms] [NX]</c>: PX keeps sub-second expiries exact.</summary>
    public static RedisCommand Set(RedisKey key, ReadOnlyMemory<byte> value, TimeSpan? expiry, bool onlyIfNotExists)
    {
        long? milliseconds = expiry is { } ttl ? Milliseconds(ttl, nameof(expiry)) : null;
        var command = new RedisCommand("SET", 2 + (milliseconds is null ? 0 : 2) + (onlyIfNotExists ? 1 : 0)).Add(key).Add(value.Span);
        if (milliseconds is { } ms)
        {
            command.Add("PX").Add(ms);
        }
        if (onlyIfNotExists)
        {
            command.Add("NX");
        }
        return command.Complete();
    }

    public static RedisCommand Delete(IEnumerable<RedisKey> keys) => KeysCommand("DEL", keys);

    public static RedisCommand Exists(IEnumerable<RedisKey> keys) => KeysCommand("EXISTS", keys);

    public static RedisCommand MultiGet(IEnumerable<RedisKey> keys) => KeysCommand("MGET", keys);

    public static RedisCommand Expire(RedisKey key, TimeSpan expiry)
    {
        var milliseconds = Milliseconds(expiry, nameof(expiry));
        return new RedisCommand("PEXPIRE", 2).Add(key).Add(milliseconds).Complete();
    }

    public static RedisCommand TimeToLive(RedisKey key) => new RedisCommand("PTTL", 1).Add(key).Complete();

    public static RedisCommand IncrementBy(RedisKey key, long increment) => new RedisCommand("INCRBY", 2).Add(key).Add(increment).Complete();

    public static RedisCommand HashSet(RedisKey key, string field, ReadOnlyMemory<byte> value) =>
        new RedisCommand("HSET", 3).Add(key).Add(field).Add(value.Span).Complete();

    public static RedisCommand HashGet(RedisKey key, string field) => new RedisCommand("HGET", 2).Add(key).Add(field).Complete();

    public static RedisCommand HashGetMany(RedisKey key, IEnumerable<string> fields) => KeyAndItemsCommand("HMGET", key, fields, "field");

    public static RedisCommand HashDelete(RedisKey key, IEnumerable<string> fields) => KeyAndItemsCommand("HDEL", key, fields, "field");

    public static RedisCommand HashGetAll(RedisKey key) => new RedisCommand("HGETALL", 1).Add(key).Complete();

    public static RedisCommand SetAdd(RedisKey key, IEnumerable<string> members) => KeyAndItemsCommand("SADD", key, members, "member");

    public static RedisCommand SetRemove(RedisKey key, IEnumerable<string> members) => KeyAndItemsCommand("SREM", key, members, "member");

    public static RedisCommand SetMembers(RedisKey key) => new RedisCommand("SMEMBERS", 1).Add(key).Complete();

    public static RedisCommand SortedSetAdd(RedisKey key, string member, double score) =>
        new RedisCommand("ZADD", 3).Add(key).Add(score).Add(member).Complete();

    /// <summary><c>ZRANGEBYSCORE key min max [LIMIT offset count]</c>; both Redis 7 and Garnet have it.</summary>
    public static RedisCommand SortedSetRangeByScore(RedisKey key, double min, double max, long offset, long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var limited = offset != 0 || count >= 0;
        var command = new RedisCommand("ZRANGEBYSCORE", limited ? 6 : 3).Add(key).Add(min).Add(max);
        if (limited)
        {
            command.Add("LIMIT").Add(offset).Add(count);
        }
        return command.Complete();
    }

    public static RedisCommand SortedSetRemove(RedisKey key, IEnumerable<string> members) => KeyAndItemsCommand("ZREM", key, members, "member");

    public static RedisCommand Scan(string cursor, string pattern, int pageSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        return new RedisCommand("SCAN", 5).Add(cursor).Add("MATCH").Add(pattern).Add("COUNT").Add(pageSize).Complete();
    }

    public static RedisCommand Info(string? section) =>
        section is null ? new RedisCommand("INFO", 0).Complete() : new RedisCommand("INFO", 1).Add(section).Complete();

    public static RedisCommand Generic(string name, IReadOnlyList<object> arguments)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var command = new RedisCommand(name, arguments.Count);
        foreach (var argument in arguments)
        {
            command.AddObject(argument);
        }
        return command.Complete();
    }

    private static RedisCommand KeysCommand(string name, IEnumerable<RedisKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var list = keys as IReadOnlyList<RedisKey> ?? [.. keys];
        if (list.Count == 0)
        {
            throw new ArgumentException($"{name} needs at least one key.", nameof(keys));
        }
        var command = new RedisCommand(name, list.Count);
        foreach (var key in list)
        {
            command.Add(key);
        }
        return command.Complete();
    }

    private static RedisCommand KeyAndItemsCommand(string name, RedisKey key, IEnumerable<string> items, string itemName)
    {
        ArgumentNullException.ThrowIfNull(items);
        var list = items as IReadOnlyList<string> ?? [.. items];
        if (list.Count == 0)
        {
            throw new ArgumentException($"{name} needs at least one {itemName}.", nameof(items));
        }
        var command = new RedisCommand(name, 1 + list.Count).Add(key);
        foreach (var item in list)
        {
            command.Add(item);
        }
        return command.Complete();
    }

    /// <summary>Whole milliseconds, rounded up so that a tiny positive expiry never becomes "expire now" (0 is an error).</summary>
    private static long Milliseconds(TimeSpan expiry, string parameter)
    {
        if (expiry <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(parameter, expiry, "An expiry must be positive.");
        }
        return (long)Math.Ceiling(expiry.TotalMilliseconds);
    }
}

/// <summary>Turns replies into the typed results of the helpers; a reply of the wrong shape is a <see cref="RedisProtocolException"/>.</summary>
internal static class Replies
{
    public static RedisReply Raw(RedisReply reply) => reply;

    public static byte[]? Bytes(RedisReply reply) => reply.Kind == RedisReplyKind.BulkString ? reply.Bytes : throw Unexpected("a bulk string", reply);

    public static long Integer(RedisReply reply) => reply.Kind == RedisReplyKind.Integer ? reply.Integer : throw Unexpected("an integer", reply);

    /// <summary>For commands that answer 1 (done) or 0 (nothing to do): PEXPIRE, HSET of one field, ZADD of one member.</summary>
    public static bool IntegerIsPositive(RedisReply reply) => Integer(reply) > 0;

    /// <summary>SET answers OK, or a null bulk string when NX (or XX) kept it from writing.</summary>
    public static bool SetResult(RedisReply reply) => reply switch
    {
        { Kind: RedisReplyKind.SimpleString } when reply.Text == "OK" => true,
        { Kind: RedisReplyKind.BulkString or RedisReplyKind.Array, IsNull: true } => false,
        _ => throw Unexpected("OK or null", reply),
    };

    /// <summary>PTTL: the time left, or null for a key without expiry (-1) or no key at all (-2).</summary>
    public static TimeSpan? TimeToLive(RedisReply reply) => Integer(reply) switch
    {
        < 0 => null,
        var milliseconds => TimeSpan.FromMilliseconds(milliseconds),
    };

    public static string Text(RedisReply reply) => reply.Kind is RedisReplyKind.BulkString or RedisReplyKind.SimpleString && !reply.IsNull
        ? reply.AsString()!
        : throw Unexpected("text", reply);

    public static string[] Strings(RedisReply reply)
    {
        var elements = Elements(reply);
        var result = new string[elements.Count];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = Text(elements[i]);
        }
        return result;
    }

    public static byte[]?[] BytesArray(RedisReply reply)
    {
        var elements = Elements(reply);
        var result = new byte[]?[elements.Count];
        for (var i = 0; i < result.Length; i++)
        {
            result[i] = Bytes(elements[i]);
        }
        return result;
    }

    /// <summary>HGETALL's flat field, value, field, value… array.</summary>
    public static Dictionary<string, byte[]> Hash(RedisReply reply)
    {
        var elements = Elements(reply);
        if (elements.Count % 2 != 0)
        {
            throw new RedisProtocolException($"Expected field/value pairs, got an array of {elements.Count} elements.");
        }
        var result = new Dictionary<string, byte[]>(elements.Count / 2, StringComparer.Ordinal);
        for (var i = 0; i < elements.Count; i += 2)
        {
            result[Text(elements[i])] = Bytes(elements[i + 1]) ?? throw Unexpected("a hash value", elements[i + 1]);
        }
        return result;
    }

    /// <summary>SCAN's [cursor, [keys…]].</summary>
    public static (string Cursor, string[] Keys) ScanPage(RedisReply reply)
    {
        var elements = Elements(reply);
        if (elements.Count != 2)
        {
            throw Unexpected("[cursor, keys]", reply);
        }
        var cursor = Text(elements[0]);
        if (!ulong.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            throw new RedisProtocolException($"Expected a numeric SCAN cursor, got '{cursor}'.");
        }
        return (cursor, Strings(elements[1]));
    }

    private static IReadOnlyList<RedisReply> Elements(RedisReply reply) =>
        reply.Kind == RedisReplyKind.Array && !reply.IsNull ? reply.Elements! : throw Unexpected("an array", reply);

    private static RedisProtocolException Unexpected(string wanted, RedisReply reply) => new($"Expected {wanted} reply, got {reply.Describe()}.");
}
