using System.Security.Cryptography;
using System.Text;
using VllmStack.Router.Configuration;

namespace VllmStack.Router.Api;

/// <summary>
/// Optional client keys: with any configured, every route but probes, metrics and the version needs
/// <c>Authorization: Bearer KEY</c>. The admin routes (<c>/admin/*</c>) need the admin key when one is configured
/// (<c>--admin-api-key</c>; client keys then do not open them), else a client key. Each key is compared in constant time,
/// and all of them are always compared.
/// </summary>
public sealed class ClientApiKeyMiddleware(RequestDelegate next, RouterOptions options)
{
    private static readonly string[] OpenPaths = ["/health", "/alive", "/metrics", "/version"];
    private readonly byte[][] _keys = [.. options.ApiKeyList().Select(Bearer)];
    private readonly byte[][] _adminKeys = options.Lora.AdminApiKey is { Length: > 0 } admin ? [Bearer(admin)] : [];

    public Task InvokeAsync(HttpContext context)
    {
        var keys = _adminKeys.Length > 0 && context.Request.Path.StartsWithSegments("/admin", StringComparison.OrdinalIgnoreCase) ? _adminKeys : _keys;
        if (keys.Length == 0 || OpenPaths.Contains(context.Request.Path.Value, StringComparer.OrdinalIgnoreCase))
        {
            return next(context);
        }
        var given = Encoding.UTF8.GetBytes(context.Request.Headers.Authorization.ToString());
        var match = false;
        foreach (var key in keys)
        {
            match |= CryptographicOperations.FixedTimeEquals(given, key);
        }
        return match
            ? next(context)
            : ErrorResponses.WriteAsync(context, 401, keys == _adminKeys
                ? "Unauthorized: the admin API needs the router's admin key (Authorization: Bearer KEY)."
                : "Unauthorized: a valid API key is required (Authorization: Bearer KEY).");
    }

    private static byte[] Bearer(string key) => Encoding.UTF8.GetBytes("Bearer " + key);
}
