using VllmStack.Router.Configuration;
using VllmStack.Router.Engines;

namespace VllmStack.Router.Routing;

/// <summary>
/// The policy in force. The dynamic config may switch it at runtime; the new policy learns the current
/// engines at once, and requests already routed are not affected.
/// </summary>
public sealed class RoutingPolicyHolder
{
    private readonly RouterOptions _options;
    private readonly EngineRegistry _registry;
    private readonly ILogger<RoutingPolicyHolder> _logger;
    private IRoutingPolicy _current;

    private readonly KvLookupClient? _kvLookup;

    public RoutingPolicyHolder(RouterOptions options, EngineRegistry registry, ILogger<RoutingPolicyHolder> logger, KvLookupClient? kvLookup = null)
    {
        _options = options;
        _registry = registry;
        _logger = logger;
        _kvLookup = kvLookup;
        _current = RoutingPolicyFactory.Create(options.RoutingLogic, options.Session, options.Prefix, options.KvAware, kvLookup);
        registry.Changed += (_, _) => Current.OnEnginesChanged(registry.Engines.ToList());
    }

    public IRoutingPolicy Current => Volatile.Read(ref _current);

    /// <summary>Whether the policy reads the prompt (parsing it costs; other policies skip it).</summary>
    public bool NeedsPrompt => Current.Name == RoutingPolicyNames.PrefixAware;

    public void Switch(string name)
    {
        if (name == Current.Name)
        {
            return;
        }
        var next = RoutingPolicyFactory.Create(name, _options.Session, _options.Prefix, _options.KvAware, _kvLookup);
        next.OnEnginesChanged(_registry.Engines.ToList());
        Volatile.Write(ref _current, next);
        _logger.LogInformation("Routing logic switched to {Policy}", name);
    }
}
