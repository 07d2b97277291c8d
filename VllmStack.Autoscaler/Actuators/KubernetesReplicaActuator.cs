using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using k8s;
using k8s.Models;
using VllmStack.Autoscaler.Configuration;
using VllmStack.ServiceDefaults.Kubernetes;

namespace VllmStack.Autoscaler.Actuators;

/// <summary>
/// Scales a Deployment through its <c>scale</c> subresource with the pod's service account (KubernetesClient, built by
/// <see cref="KubernetesApi"/>): a read of the Scale gives <c>spec.replicas</c>, a JSON merge patch of
/// <c>{"spec":{"replicas":n}}</c> sets it. RBAC needed: get and patch on <c>deployments/scale</c> in the namespace,
/// nothing else.
/// </summary>
public sealed class KubernetesReplicaActuator(IKubernetes client, KubernetesScaleOptions options, TimeSpan timeout) : IReplicaActuator
{
    public string Name => "kubernetes";

    public Task<int> GetReplicasAsync(string target, CancellationToken cancellationToken) =>
        CallAsync(target, "get", async token =>
        {
            var scale = await client.AppsV1.ReadNamespacedDeploymentScaleAsync(target, options.Namespace, cancellationToken: token).ConfigureAwait(false);
            // An omitted spec.replicas means 0 in a Scale object.
            return scale.Spec?.Replicas ?? 0;
        }, cancellationToken);

    public Task SetReplicasAsync(string target, int replicas, CancellationToken cancellationToken) =>
        CallAsync(target, "patch", async token =>
        {
            var patch = new V1Patch(new V1Scale { Spec = new V1ScaleSpec { Replicas = replicas } }, V1Patch.PatchType.MergePatch);
            await client.AppsV1.PatchNamespacedDeploymentScaleAsync(patch, target, options.Namespace, cancellationToken: token).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    /// <summary>One call within the timeout; API errors become explained <see cref="ActuatorException"/>s.</summary>
    private async Task<T> CallAsync<T>(string deployment, string verb, Func<CancellationToken, Task<T>> call, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            return await call(deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (KubernetesApiError.From(e) is { } error)
        {
            throw Explain(error, deployment, verb, e);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or SocketException or JsonException
            || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new ActuatorException($"The call to the Kubernetes API server failed: {e.Message}", true, e);
        }
    }

    private ActuatorException Explain(KubernetesApiError error, string deployment, string verb, Exception inner)
    {
        var where = $"deployments/{deployment}/scale in namespace {options.Namespace}";
        return error.StatusCode switch
        {
            HttpStatusCode.Forbidden => new ActuatorException(
                $"Kubernetes forbade the autoscaler to {verb} {where}: {error.Message}. Its service account needs a Role with get and patch on deployments/scale in that namespace, and a RoleBinding.", false, inner),
            HttpStatusCode.Unauthorized => new ActuatorException(
                $"Kubernetes rejected the autoscaler's credentials to {verb} {where}: {error.Message}. Check the service account token.", false, inner),
            HttpStatusCode.NotFound => new ActuatorException($"No Deployment {deployment} in namespace {options.Namespace} ({error.Message}).", false, inner),
            HttpStatusCode.Conflict => new ActuatorException($"Conflict on {where} ({error.Message}); retried at the next interval.", true, inner),
            HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError => new ActuatorException(
                $"The API server answered {(int)error.StatusCode} to {verb} {where}: {error.Message}; retried at the next interval.", true, inner),
            _ => new ActuatorException($"The API server answered {(int)error.StatusCode} to {verb} {where}: {error.Message}", false, inner),
        };
    }
}
