namespace VllmStack.Hosting.Redis;

/// <summary>How a Redis resource runs on this machine, in order of preference.</summary>
public enum RedisMode
{
    /// <summary><c>redis-server</c> found on PATH.</summary>
    Server,

    /// <summary>Garnet, the Redis-compatible <c>garnet-server</c> dotnet tool from the repository's tool manifest.</summary>
    Garnet,

    /// <summary>The <c>redis:7</c> image, run by docker or podman.</summary>
    Container,
}
