using k8s;
using k8s.Models;
using VllmStack.Router.Discovery;
using VllmStack.ServiceDefaults.Kubernetes;

namespace VllmStack.Router.Lora;

/// <summary>
/// Where the admin API's changes to the catalogue are kept, so that every router replica and a restart see them. A change
/// is read, applied and written as one step against what is stored, so that two routers changing it at once lose nothing.
/// </summary>
public interface ILoraCatalogStore
{
    /// <summary>
    /// Applies <paramref name="change"/> to the stored catalogue (or to <paramref name="current"/>, this router's, where the
    /// store holds none yet) and stores the result, which it returns. <paramref name="change"/> may run more than once (a
    /// concurrent writer came between) and may throw to refuse the change.
    /// </summary>
    /// <exception cref="LoraCatalogStoreException">It could not be stored; the message says why.</exception>
    Task<IReadOnlyList<LoraAdapter>> UpdateAsync(IReadOnlyList<LoraAdapter> current, Func<IReadOnlyList<LoraAdapter>, IReadOnlyList<LoraAdapter>> change,
        CancellationToken cancellationToken);
}

/// <summary>The store failed; the admin API answers 503 with this message and the catalogue is unchanged.</summary>
public sealed class LoraCatalogStoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// A local file (the AppHost's, shared by the routers it runs): read, changed and replaced atomically (readers never see
/// half of it) under a lock file, so that routers sharing it do not overwrite each other's changes.
/// </summary>
public sealed class LoraCatalogFileStore(string path) : ILoraCatalogStore
{
    public async Task<IReadOnlyList<LoraAdapter>> UpdateAsync(IReadOnlyList<LoraAdapter> current,
        Func<IReadOnlyList<LoraAdapter>, IReadOnlyList<LoraAdapter>> change, CancellationToken cancellationToken)
    {
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            await using var exclusive = await LockAsync(cancellationToken).ConfigureAwait(false);
            var stored = File.Exists(path) ? LoraCatalogJson.Parse(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false)) : current;
            var next = change(stored);
            await File.WriteAllTextAsync(temporary, LoraCatalogJson.Serialize(next), cancellationToken).ConfigureAwait(false);
            File.Move(temporary, path, overwrite: true);
            return next;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            try
            {
                File.Delete(temporary);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
                // Its folder is gone too (the reason the write failed): nothing was left behind.
            }
            throw new LoraCatalogStoreException($"the adapter catalogue {path} could not be changed: {e.Message}", e);
        }
    }

    /// <summary>An exclusive lock file beside the catalogue (another router holding it: wait, at most 10 s).</summary>
    private async Task<FileStream> LockAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                // Not deleted on close: a waiter could then lock the deleted file while a third process locks a new one.
                return new FileStream(path + ".lock", FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
            }
            catch (IOException e) when (e is not DirectoryNotFoundException && attempt < 200)
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}

/// <summary>No catalogue file: admin changes live in this router's memory (one router, tests, benchmarks).</summary>
public sealed class LoraCatalogMemoryStore : ILoraCatalogStore
{
    public Task<IReadOnlyList<LoraAdapter>> UpdateAsync(IReadOnlyList<LoraAdapter> current,
        Func<IReadOnlyList<LoraAdapter>, IReadOnlyList<LoraAdapter>> change, CancellationToken cancellationToken) => Task.FromResult(change(current));
}

/// <summary>
/// On Kubernetes: the ConfigMap the routers mount as their catalogue file (key <c>adapters.json</c>), read and replaced
/// through the API with its <c>resourceVersion</c>, so that a concurrent change by another router replica is met with 409
/// and the change is applied again on top of it (RBAC: <c>get</c> and <c>update</c> on that ConfigMap). Kubelet brings the
/// result to every router's mounted file within its sync period (about a minute); the router that made it uses it at once.
/// </summary>
public sealed class LoraCatalogConfigMapStore(string configMap, KubernetesDiscoveryOptions cluster, ILogger<LoraCatalogConfigMapStore> logger)
    : ILoraCatalogStore, IDisposable
{
    public const string Key = "adapters.json";

    private const int MaxConflicts = 5;

    private readonly Lazy<k8s.Kubernetes> _client = new(() => KubernetesApi.Create(
        cluster.ApiServer ?? throw new LoraCatalogStoreException("the Kubernetes API server is not known (KUBERNETES_SERVICE_HOST is unset)"),
        cluster.TokenPath, cluster.CaCertificatePath, cluster.RequestTimeout, "VllmStack.Router", logger));

    public async Task<IReadOnlyList<LoraAdapter>> UpdateAsync(IReadOnlyList<LoraAdapter> current,
        Func<IReadOnlyList<LoraAdapter>, IReadOnlyList<LoraAdapter>> change, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var stored = await _client.Value.CoreV1.ReadNamespacedConfigMapAsync(configMap, cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                var next = change(stored.Data?.TryGetValue(Key, out var json) == true ? LoraCatalogJson.Parse(json) : []);
                stored.Data ??= new Dictionary<string, string>();
                stored.Data[Key] = LoraCatalogJson.Serialize(next);
                // The resourceVersion read travels with the object: the API refuses (409) if another writer came between.
                await _client.Value.CoreV1.ReplaceNamespacedConfigMapAsync(stored, configMap, cluster.Namespace, cancellationToken: cancellationToken).ConfigureAwait(false);
                return next;
            }
            catch (Exception e) when (KubernetesApiError.From(e) is { StatusCode: System.Net.HttpStatusCode.Conflict } && attempt < MaxConflicts)
            {
                // Another router changed it: read it again and apply the change on top.
            }
            catch (Exception e) when (KubernetesApiError.From(e) is { } refusal)
            {
                throw new LoraCatalogStoreException(
                    $"the Kubernetes API refused to change ConfigMap {cluster.Namespace}/{configMap} ({(int)refusal.StatusCode}): {refusal.Message}", e);
            }
            catch (FormatException e)
            {
                throw new LoraCatalogStoreException($"ConfigMap {cluster.Namespace}/{configMap} does not hold a valid catalogue: {e.Message}", e);
            }
            catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                throw new LoraCatalogStoreException($"the Kubernetes API could not be reached to change ConfigMap {cluster.Namespace}/{configMap}: {e.Message}", e);
            }
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
