using VllmStack.Redis.Protocol;

namespace VllmStack.Redis.Connections;

/// <summary>
/// A command on its way out and the reply it is waiting for. Continuations run on the thread pool, never on the
/// connection's reader loop, so a slow caller cannot hold up the replies of everyone else.
/// </summary>
internal sealed class PendingReply : TaskCompletionSource<RedisReply>
{
    private RedisCommand? _command;

    public PendingReply(RedisCommand command)
        : base(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        _command = command;
        Name = command.Name;
    }

    public string Name { get; }

    /// <summary>Hands the serialised command to whoever sends (or discards) it; null once taken.</summary>
    public RedisCommand? TakeCommand() => Interlocked.Exchange(ref _command, null);

    /// <summary>Fails the request if it is still open. The exception is marked observed because the caller usually
    /// learns of it another way (a timeout it throws itself, a batch that reports the first failure).</summary>
    public bool Fail(Exception error)
    {
        if (!TrySetException(error))
        {
            return false;
        }
        _ = Task.Exception;
        return true;
    }
}
