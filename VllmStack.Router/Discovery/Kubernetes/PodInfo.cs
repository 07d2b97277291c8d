using System.Net;
using System.Net.Sockets;
using k8s.Models;

namespace VllmStack.Router.Discovery;

/// <summary>A pod as discovery cares about it: a stable key, and its engine URL when it may receive traffic.</summary>
internal sealed record PodInfo(string Key, Uri? Engine)
{
    /// <summary>The pod as an engine on <paramref name="port"/>; null for an object without a name or uid.</summary>
    public static PodInfo? From(V1Pod pod, int port)
    {
        var metadata = pod.Metadata;
        // Keyed by uid so that a pod re-created under the same name is a different pod.
        var key = metadata?.Uid ?? (metadata?.Name is { } name ? $"{metadata.NamespaceProperty}/{name}" : null);
        return key is null ? null : new PodInfo(key, EngineUrl(pod, port));
    }

    /// <summary>An engine is a running, ready pod with an IP that is not being deleted (it is draining then).</summary>
    private static Uri? EngineUrl(V1Pod pod, int port)
    {
        if (pod.Metadata?.DeletionTimestamp is not null || pod.Status is not { Phase: "Running" } status)
        {
            return null;
        }
        var ready = status.Conditions?.FirstOrDefault(c => c.Type == "Ready");
        if (ready?.Status != "True" || !IPAddress.TryParse(status.PodIP, out var ip))
        {
            return null;
        }
        var host = ip.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString();
        return new Uri($"http://{host}:{port}/");
    }
}
