using Microsoft.Extensions.Configuration;

namespace VllmStack.ServiceDefaults.Discovery;

/// <summary>
/// Reads Aspire's service discovery convention: <c>services__{name}__{scheme}__{index}=URL</c>
/// (configuration path <c>services:name:scheme:index</c>).
/// </summary>
public static class ServiceEndpoints
{
    /// <summary>
    /// The endpoints of <paramref name="serviceName"/> for the first of <paramref name="schemes"/> that has any
    /// (so <c>["https", "http"]</c> prefers TLS, as Aspire's <c>https+http://</c> does); every scheme when none is given.
    /// </summary>
    public static IReadOnlyList<Uri> Resolve(IConfiguration configuration, string serviceName, params string[] schemes)
    {
        var service = configuration.GetSection("services").GetSection(serviceName);
        if (schemes.Length == 0)
        {
            return [.. service.GetChildren().SelectMany(ReadUris)];
        }
        foreach (var scheme in schemes)
        {
            var uris = ReadUris(service.GetSection(scheme));
            if (uris.Count > 0)
            {
                return uris;
            }
        }
        return [];
    }

    /// <summary>Every service named in configuration, with all of its endpoints.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<Uri>> All(IConfiguration configuration) =>
        configuration.GetSection("services").GetChildren()
            .ToDictionary(s => s.Key, s => (IReadOnlyList<Uri>)[.. s.GetChildren().SelectMany(ReadUris)], StringComparer.OrdinalIgnoreCase);

    /// <summary>Service names with an endpoint whose own name starts with <paramref name="prefix"/>.</summary>
    public static IEnumerable<string> NamesStartingWith(IConfiguration configuration, string prefix) =>
        configuration.GetSection("services").GetChildren().Select(s => s.Key)
            .Where(k => k.StartsWith(prefix, StringComparison.OrdinalIgnoreCase));

    private static List<Uri> ReadUris(IConfigurationSection schemeSection)
    {
        var result = new List<(int Index, Uri Uri)>();
        foreach (var entry in schemeSection.GetChildren())
        {
            if (string.IsNullOrWhiteSpace(entry.Value))
            {
                continue;
            }
            if (!Uri.TryCreate(entry.Value, UriKind.Absolute, out var uri))
            {
                throw new InvalidOperationException($"Configuration '{entry.Path}' = '{entry.Value}' is not an absolute URL.");
            }
            result.Add((int.TryParse(entry.Key, out var index) ? index : int.MaxValue, uri));
        }
        return [.. result.OrderBy(r => r.Index).Select(r => r.Uri)];
    }
}

/// <summary>Aspire's connection string convention: <c>ConnectionStrings__{name}</c>.</summary>
public static class ConnectionStrings
{
    public static string? Get(IConfiguration configuration, string name) =>
        configuration.GetConnectionString(name) is { Length: > 0 } value ? value : null;

    public static string GetRequired(IConfiguration configuration, string name) =>
        Get(configuration, name) ?? throw new InvalidOperationException(
            $"Connection string '{name}' is missing: set ConnectionStrings__{name} (environment) or ConnectionStrings:{name} (configuration).");
}
