using StackExchange.Redis;

namespace VllmStack.CacheServer.Configuration;

/// <summary>
/// StackExchange.Redis options from the Aspire connection string (<c>host:port[,password=…]</c>, which is that library's
/// own format) and <see cref="CacheServerOptions"/>, set so that no call waits on a Redis that is down: the first connect
/// does not abort the start, commands fail at once while disconnected (the pool's breaker answers for them), every wait is
/// bounded, and reconnection runs in the background.
/// </summary>
public static class RedisConfiguration
{
    private static readonly string[] ConnectTimeoutKeys = ["connectTimeout"];
    private static readonly string[] CommandTimeoutKeys = ["syncTimeout", "asyncTimeout"];

    /// <summary>The options, or the problem with the connection string (an unknown key, a bad value, no endpoint).</summary>
    public static (ConfigurationOptions? Options, string? Problem) Create(string connectionString, CacheServerOptions options)
    {
        ConfigurationOptions config;
        try
        {
            config = ConfigurationOptions.Parse(connectionString);
        }
        catch (ArgumentException e)
        {
            return (null, e.Message);
        }
        if (config.EndPoints.Count == 0)
        {
            return (null, "no host[:port]");
        }
        config.AbortOnConnectFail = false;
        // Fail fast rather than queue while disconnected: the breaker in RedisAvailability then answers for the pool.
        config.BacklogPolicy = BacklogPolicy.FailFast;
        config.ReconnectRetryPolicy = new ExponentialRetry(250, 2000);
        // The cache server is no Redis administrator and uses no pub/sub: no config channel subscription, no tie-breaker key.
        config.ConfigurationChannel = "";
        config.TieBreaker = "";
        if (!Names(connectionString, ConnectTimeoutKeys))
        {
            config.ConnectTimeout = options.RedisConnectTimeoutMs;
        }
        if (!Names(connectionString, CommandTimeoutKeys))
        {
            config.SyncTimeout = options.RedisCommandTimeoutMs;
            config.AsyncTimeout = options.RedisCommandTimeoutMs;
        }
        return (config, null);
    }

    private static bool Names(string connectionString, string[] keys) =>
        connectionString.Split(',').Any(part => keys.Any(key =>
            part.TrimStart().StartsWith(key + "=", StringComparison.OrdinalIgnoreCase)));
}
