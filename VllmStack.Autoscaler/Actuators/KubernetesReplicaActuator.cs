using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using VllmStack.Autoscaler.Configuration;
using VllmStack.ServiceDefaults.Kubernetes;

namespace VllmStack.Autoscaler.Actuators;

/// <summary>
/// Scales a Deployment through its <c>scale</c> subresource with the pod's service account: <c>GET</c> reads
/// <c>spec.replicas</c>, a JSON merge <c>PATCH</c> of <c>{"spec":{"replicas":n}}</c> sets it. RBAC needed: get and
/// patch on <c>deployments/scale</c> in the namespace, nothing else.
/// </summary>
public sealed class KubernetesReplicaActuator(KubernetesApiClient api, KubernetesScaleOptions options, TimeSpan timeout) : IReplicaActuator
{
    public string Name => "kubernetes";

    public Task<int> GetReplicasAsync(string target, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Get, target, null, "get", async (response, token) =>
        {
            using var scale = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(token).ConfigureAwait(false), default, token).ConfigureAwait(false);
            return scale.RootElement.TryGetProperty("spec", out var spec) && spec.TryGetProperty("replicas", out var replicas) && replicas.TryGetInt32(out var count)
                ? count
                // An omitted spec.replicas means 0 in a Scale object.
                : 0;
        }, cancellationToken);

    public Task SetReplicasAsync(string target, int replicas, CancellationToken cancellationToken)
    {
        var patch = new StringContent(JsonSerializer.Serialize(new { spec = new { replicas } }), Encoding.UTF8);
        patch.Headers.ContentType = new MediaTypeHeaderValue("application/merge-patch+json");
        return SendAsync(HttpMethod.Patch, target, patch, "patch", (_, _) => Task.FromResult(true), cancellationToken);
    }

    private string ScalePath(string deployment) =>
        $"apis/apps/v1/namespaces/{Uri.EscapeDataString(options.Namespace)}/deployments/{Uri.EscapeDataString(deployment)}/scale";

    /// <summary>One call, its answer read within the same deadline; API errors become explained <see cref="ActuatorException"/>s.</summary>
    private async Task<T> SendAsync<T>(HttpMethod method, string deployment, HttpContent? content, string verb,
        Func<HttpResponseMessage, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            using var response = await api.SendAsync(method, ScalePath(deployment), content, verb, deadline.Token).ConfigureAwait(false);
            return await read(response, deadline.Token).ConfigureAwait(false);
        }
        catch (KubernetesApiException e)
        {
            var where = $"deployments/{deployment}/scale in namespace {options.Namespace}";
            throw e.StatusCode switch
            {
                HttpStatusCode.Forbidden => new ActuatorException(
                    $"Kubernetes forbade the autoscaler to {verb} {where}: {e.Message}. Its service account needs a Role with get and patch on deployments/scale in that namespace, and a RoleBinding.", false, e),
                HttpStatusCode.Unauthorized => new ActuatorException(
                    $"Kubernetes rejected the autoscaler's credentials to {verb} {where}: {e.Message}. Check the service account token.", false, e),
                HttpStatusCode.NotFound => new ActuatorException($"No Deployment {deployment} in namespace {options.Namespace} ({e.Message}).", false, e),
                HttpStatusCode.Conflict => new ActuatorException($"Conflict on {where} ({e.Message}); retried at the next interval.", true, e),
                HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError => new ActuatorException(
                    $"The API server answered {(int)e.StatusCode} to {verb} {where}: {e.Message}; retried at the next interval.", true, e),
                _ => new ActuatorException($"The API server answered {(int)e.StatusCode} to {verb} {where}: {e.Message}", false, e),
            };
        }
        catch (Exception e) when (e is HttpRequestException or IOException or JsonException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new ActuatorException($"The call to the Kubernetes API server failed: {e.Message}", true, e);
        }
    }
}
