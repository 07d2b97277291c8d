using Microsoft.Extensions.Configuration;

namespace VllmStack.ServiceDefaults.Discovery;

/// <summary>Aspire's connection string convention: <c>ConnectionStrings__{name}</c>.</summary>
public static class ConnectionStrings
{
    public static string? Get(IConfiguration configuration, string name) =>
        configuration.GetConnectionString(name) is { Length: > 0 } value ? value : null;

    public static string GetRequired(IConfiguration configuration, string name) =>
        Get(configuration, name) ?? throw new InvalidOperationException(
            $"Connection string '{name}' is missing: set ConnectionStrings__{name} (environment) or ConnectionStrings:{name} (configuration).");
}
