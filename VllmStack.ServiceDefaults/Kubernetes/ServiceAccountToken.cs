using System.Net.Http.Headers;
using k8s.Authentication;
using Microsoft.Extensions.Logging;

namespace VllmStack.ServiceDefaults.Kubernetes;

/// <summary>
/// The bearer token from the service account's token file, read again for every request: projected tokens rotate, and
/// the package's own <see cref="TokenFileAuth"/> keeps a token it has read for a minute. A missing file means no token
/// (fine behind <c>kubectl proxy</c>), said once in the log in case it is not.
/// </summary>
public sealed partial class ServiceAccountToken(string tokenPath, ILogger logger) : ITokenProvider
{
    private int _warnedMissing;

    public async Task<AuthenticationHeaderValue> GetAuthenticationHeaderAsync(CancellationToken cancellationToken)
    {
        try
        {
            var token = (await File.ReadAllTextAsync(tokenPath, cancellationToken).ConfigureAwait(false)).Trim();
            // No Authorization header at all for an empty file (the package passes null on as "none").
            return token.Length > 0 ? new AuthenticationHeaderValue("Bearer", token) : null!;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            if (Interlocked.Exchange(ref _warnedMissing, 1) == 0)
            {
                LogMissingToken(tokenPath);
            }
            return null!;
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "No service account token at {TokenPath}; calling the Kubernetes API without credentials")]
    private partial void LogMissingToken(string tokenPath);
}
