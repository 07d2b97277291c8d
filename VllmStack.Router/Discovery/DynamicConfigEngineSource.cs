using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using VllmStack.Router.Configuration;

namespace VllmStack.Router.Discovery;

/// <summary>The parts of the Production Stack's dynamic config file the router acts on.</summary>
public sealed record DynamicConfig(IReadOnlySet<Uri> Backends, IReadOnlyDictionary<Uri, string> Models, string? RoutingLogic);

/// <summary>
/// <c>--dynamic-config-json</c>: a JSON file (<c>static_backends</c>, <c>static_models</c>, <c>routing_logic</c>) polled
/// twice a second and applied when its content changes. Polling, not a file watcher: it also works on mounted
/// ConfigMaps (symlink swaps) and network file systems. A file that cannot be read or parsed keeps the last good config.
/// </summary>
public sealed class DynamicConfigEngineSource(string path, ILogger<DynamicConfigEngineSource> logger) : IEngineSource
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(500);

    public string Name => "dynamic-config";

    /// <summary>The latest config applied (models and routing logic are read from here by the registry and the policy holder).</summary>
    public DynamicConfig? Current { get; private set; }

    public event Action<DynamicConfig>? Changed;

    public async IAsyncEnumerable<IReadOnlySet<Uri>> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        byte[]? lastHash = null;
        var first = true;
        while (!cancellationToken.IsCancellationRequested)
        {
            DynamicConfig? config = null;
            try
            {
                var bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
                var hash = SHA256.HashData(bytes);
                if (lastHash is null || !hash.AsSpan().SequenceEqual(lastHash))
                {
                    lastHash = hash;
                    config = Parse(bytes);
                    logger.LogInformation("Dynamic config {Path} applied: {Count} backends, routing logic {RoutingLogic}",
                        path, config.Backends.Count, config.RoutingLogic ?? "unchanged");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or JsonException)
            {
                if (first)
                {
                    logger.LogWarning("Dynamic config {Path} cannot be used yet: {Reason}", path, e.Message);
                }
                else
                {
                    logger.LogDebug("Dynamic config {Path} unreadable, keeping the last good one: {Reason}", path, e.Message);
                }
                lastHash = null;
            }
            first = false;
            if (config is not null)
            {
                Current = config;
                Changed?.Invoke(config);
                yield return config.Backends;
            }
            await Task.Delay(PollInterval, cancellationToken).ConfigureAwait(false);
        }
    }

    public static DynamicConfig Parse(ReadOnlySpan<byte> json)
    {
        using var document = JsonDocument.Parse(json.ToArray());
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException("the dynamic config must be a JSON object");
        }
        var backends = ReadList(root, "static_backends").Select(RouterOptions.ParseUrl).ToList();
        var models = ReadList(root, "static_models");
        if (models.Count > 0 && models.Count != backends.Count)
        {
            throw new FormatException($"static_models has {models.Count} entries for {backends.Count} static_backends");
        }
        var routing = root.TryGetProperty("routing_logic", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
        if (routing is not null && !Routing.RoutingPolicyNames.All.Contains(routing))
        {
            throw new FormatException($"routing_logic '{routing}' is unknown");
        }
        var modelMap = new Dictionary<Uri, string>();
        for (var i = 0; i < models.Count; i++)
        {
            modelMap[backends[i]] = models[i];
        }
        return new DynamicConfig(backends.ToHashSet(), modelMap, routing);
    }

    private static List<string> ReadList(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return [];
        }
        return value.ValueKind switch
        {
            JsonValueKind.String => [.. RouterOptions.SplitList(value.GetString())],
            JsonValueKind.Array => [.. value.EnumerateArray().Select(v => v.GetString() ?? throw new FormatException($"{name} must hold strings"))],
            _ => throw new FormatException($"{name} must be a comma-separated string or an array"),
        };
    }
}
