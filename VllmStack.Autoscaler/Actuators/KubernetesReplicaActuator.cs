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

    public async Task<int> GetReplicasAsync(string target, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(HttpMethod.Get, target, null, "get", cancellationToken).ConfigureAwait(false);
        using var scale = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), default, cancellationToken).ConfigureAwait(false);
        return scale.RootElement.TryGetProperty("spec", out var spec) && spec.TryGetProperty("replicas", out var replicas) && replicas.TryGetInt32(out var count)
            ? count
            // An omitted spec.replicas means 0 in a Scale object.
            : 0;
    }

    public async Task SetReplicasAsync(string target, int replicas, CancellationToken cancellationToken)
    {
        var patch = new StringContent(JsonSerializer.Serialize(new { spec = new { replicas } }), Encoding.UTF8);
        patch.Headers.ContentType = new MediaTypeHeaderValue("application/merge-patch+json");
        using var response = await SendAsync(HttpMethod.Patch, target, patch, "patch", cancellationToken).ConfigureAwait(false);
    }

    private string ScalePath(string deployment) =>
        $"apis/apps/v1/namespaces/{Uri.EscapeDataString(options.Namespace)}/deployments/{Uri.EscapeDataString(deployment)}/scale";

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string deployment, HttpContent? content, string verb, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            return await api.SendAsync(method, ScalePath(deployment), content, verb, deadline.Token).ConfigureAwait(false);
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
        catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new ActuatorException($"The Kubernetes API server did not answer: {e.Message}", true, e);
        }
    }
}
