namespace VllmStack.Router.Routing;

/// <summary>Builds the routing policy named in configuration.</summary>
public static class RoutingPolicyFactory
{
    /// <summary>
    /// The policy called <paramref name="name"/> (case-insensitive, see <see cref="RoutingPolicyNames"/>);
    /// options left null take their defaults.
    /// </summary>
    /// <exception cref="ArgumentException">The name is not a known policy; the message lists the valid ones.</exception>
    public static IRoutingPolicy Create(string name, SessionRoutingOptions? session = null, PrefixRoutingOptions? prefix = null,
        KvAwareRoutingOptions? kvAware = null, KvLookupClient? kvLookup = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            RoutingPolicyNames.RoundRobin => new RoundRobinPolicy(),
            RoutingPolicyNames.Session => new SessionPolicy(session ?? new SessionRoutingOptions()),
            RoutingPolicyNames.LeastLoad => new LeastLoadPolicy(),
            RoutingPolicyNames.PrefixAware => new PrefixAwarePolicy(prefix ?? new PrefixRoutingOptions()),
            RoutingPolicyNames.KvAware => new KvAwarePolicy(kvAware ?? new KvAwareRoutingOptions(),
                kvLookup ?? throw new ArgumentException("kvaware needs a cache server: set Router:KvAware:CacheServer or reference the cacheserver service.", nameof(name))),
            _ => throw new ArgumentException(
                $"Unknown routing policy '{name}'. Valid policies: {string.Join(", ", RoutingPolicyNames.All)}.", nameof(name)),
        };
    }
}
