using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace VllmStack.Autoscaler.Actuators;

/// <summary>
/// Scales a resource of a locally running AppHost through its scaling API: <c>GET /api/resources/{name}</c> for the
/// desired replica count, <c>PUT /api/resources/{name}/replicas {"replicas": n}</c> to change it.
/// </summary>
public sealed class LocalReplicaActuator(HttpClient http, Uri scalingApi, TimeSpan timeout) : IReplicaActuator
{
    public string Name => "local";

    public async Task<int> GetReplicasAsync(string target, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(HttpMethod.Get, target, null, cancellationToken).ConfigureAwait(false);
        var snapshot = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken).ConfigureAwait(false);
        return snapshot.TryGetProperty("desiredReplicas", out var desired) && desired.TryGetInt32(out var replicas)
            ? replicas
            : throw new ActuatorException($"The scaling API's answer for '{target}' has no desiredReplicas.", transient: false);
    }

    public async Task SetReplicasAsync(string target, int replicas, CancellationToken cancellationToken)
    {
        using var response = await SendAsync(HttpMethod.Put, $"{target}/replicas", JsonContent.Create(new { replicas }), cancellationToken).ConfigureAwait(false);
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        HttpResponseMessage response;
        try
        {
            using var request = new HttpRequestMessage(method, new Uri(scalingApi, $"api/resources/{path}")) { Content = content };
            response = await http.SendAsync(request, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new ActuatorException($"The AppHost's scaling API at {scalingApi} did not answer: {e.Message}", transient: true, e);
        }
        if (response.IsSuccessStatusCode)
        {
            return response;
        }
        using (response)
        {
            var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            throw new ActuatorException($"The AppHost's scaling API answered {(int)response.StatusCode} for {method} {path}: {body}",
                transient: response.StatusCode >= HttpStatusCode.InternalServerError);
        }
    }
}
