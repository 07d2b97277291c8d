using k8s;
using k8s.Models;
using VllmStack.Router.Discovery;
using VllmStack.ServiceDefaults.Kubernetes;

namespace VllmStack.Router.Lora;

/// <summary>Where the admin API's changes to the catalogue are kept, so that every router replica and a restart see them.</summary>
public interface ILoraCatalogStore
{
    /// <summary>Replaces the stored catalogue with <paramref name="json"/> (<see cref="LoraCatalogJson"/>).</summary>
    /// <exception cref="LoraCatalogStoreException">It could not be stored; the message says why.</exception>
    Task SaveAsync(string json, CancellationToken cancellationToken);
}

/// <summary>The store failed; the admin API answers 503 with this message and the catalogue is unchanged.</summary>
public sealed class LoraCatalogStoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A local file (the AppHost's, shared by the routers it runs), replaced atomically so that readers never see half of it.</summary>
public sealed class LoraCatalogFileStore(string path) : ILoraCatalogStore
{
    public async Task SaveAsync(string json, CancellationToken cancellationToken)
    {
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            await File.WriteAllTextAsync(temporary, json, cancellationToken).ConfigureAwait(false);
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try
            {
                File.Delete(temporary);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // Its folder is gone too (the reason the write failed): nothing was left behind.
            }
            throw new LoraCatalogStoreException($"the adapter catalogue {path} could not be written: {e.Message}", e);
        }
    }
}

/// <summary>
/// On Kubernetes: the ConfigMap the routers mount as their catalogue file (key <c>adapters.json</c>), merge-patched
/// through the API with the router's service account (RBAC: <c>patch</c> on that ConfigMap). Kubelet brings the change
/// to every router's mounted file within its sync period (about a minute); the router that made it uses it at once.
/// </summary>
public sealed class LoraCatalogConfigMapStore(string configMap, KubernetesDiscoveryOptions cluster, ILogger<LoraCatalogConfigMapStore> logger)
    : ILoraCatalogStore, IDisposable
{
    public const string Key = "adapters.json";

    private readonly Lazy<k8s.Kubernetes> _client = new(() => KubernetesApi.Create(
        cluster.ApiServer ?? throw new LoraCatalogStoreException("the Kubernetes API server is not known (KUBERNETES_SERVICE_HOST is unset)"),
        cluster.TokenPath, cluster.CaCertificatePath, cluster.RequestTimeout, "VllmStack.Router", logger));

    public async Task SaveAsync(string json, CancellationToken cancellationToken)
    {
        var patch = new V1Patch(new V1ConfigMap { Data = new Dictionary<string, string> { [Key] = json } }, V1Patch.PatchType.MergePatch);
        try
        {
            await _client.Value.CoreV1.PatchNamespacedConfigMapAsync(patch, configMap, cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (KubernetesApiError.From(e) is { } refusal)
        {
            throw new LoraCatalogStoreException(
                $"the Kubernetes API refused to patch ConfigMap {cluster.Namespace}/{configMap} ({(int)refusal.StatusCode}): {refusal.Message}", e);
        }
        catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new LoraCatalogStoreException($"the Kubernetes API could not be reached to patch ConfigMap {cluster.Namespace}/{configMap}: {e.Message}", e);
        }
    }

    public void Dispose()
    {
        if (_client.IsValueCreated)
        {
            _client.Value.Dispose();
        }
    }
}

/// <summary>No catalogue file: admin changes live in this router's memory (one router, tests, benchmarks).</summary>
public sealed class LoraCatalogMemoryStore : ILoraCatalogStore
{
    public Task SaveAsync(string json, CancellationToken cancellationToken) => Task.CompletedTask;
}
