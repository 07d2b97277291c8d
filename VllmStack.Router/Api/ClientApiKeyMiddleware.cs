using System.Security.Cryptography;
using System.Text;
using VllmStack.Router.Configuration;

namespace VllmStack.Router.Api;

/// <summary>
/// Optional client keys: with any configured, every route but probes, metrics and the version needs
/// <c>Authorization: Bearer KEY</c>. Each key is compared in constant time, and all of them are always compared.
/// </summary>
public sealed class ClientApiKeyMiddleware(RequestDelegate next, RouterOptions options)
{
    private static readonly string[] OpenPaths = ["/health", "/alive", "/metrics", "/version"];
    private readonly byte[][] _keys = [.. options.ApiKeyList().Select(k => Encoding.UTF8.GetBytes("Bearer " + k))];

    public Task InvokeAsync(HttpContext context)
    {
        if (_keys.Length == 0 || OpenPaths.Contains(context.Request.Path.Value, StringComparer.OrdinalIgnoreCase))
        {
            return next(context);
        }
        var given = Encoding.UTF8.GetBytes(context.Request.Headers.Authorization.ToString());
        var match = false;
        foreach (var key in _keys)
        {
            match |= CryptographicOperations.FixedTimeEquals(given, key);
        }
        return match
            ? next(context)
            : ErrorResponses.WriteAsync(context, 401, "Unauthorized: a valid API key is required (Authorization: Bearer KEY).");
    }
}
