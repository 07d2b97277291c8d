using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace VllmStack.ServiceDefaults.Kubernetes;

/// <summary>The cluster CA that must sign the API server's certificate, checked as kubectl checks it.</summary>
public static partial class ClusterCa
{
    /// <summary>The PEM bundle at <paramref name="path"/>, or null (with a warning) when there is none.</summary>
    public static X509Certificate2Collection? Load(string? path, ILogger logger)
    {
        if (string.IsNullOrWhiteSpace(path) || !File.Exists(path))
        {
            LogMissingClusterCa(logger, path ?? "");
            return null;
        }
        var ca = new X509Certificate2Collection();
        ca.ImportFromPemFile(path);
        return ca;
    }

    /// <summary>
    /// Accepts the API server's certificate only if it chains to the cluster CA (the system roots are not trusted for
    /// the cluster) and was issued for the host connected to.
    /// </summary>
    public static bool IsTrusted(X509Certificate2Collection clusterCa, X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        // The cluster CA can vouch for an unknown issuer, not for a wrong host name or a missing certificate.
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(clusterCa);
        // Cluster CAs publish no revocation lists.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }
        if (certificate is X509Certificate2 leaf)
        {
            return chain.Build(leaf);
        }
        using var loaded = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(loaded);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster CA '{Path}' not found; the API server's certificate is checked against the system roots instead")]
    private static partial void LogMissingClusterCa(ILogger logger, string path);
}
