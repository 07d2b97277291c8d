using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;

namespace VllmStack.ServiceDefaults.Kubernetes;

/// <summary>
/// A refusal of the API server as it explained it: the HTTP status of a failed call (<see cref="HttpOperationException"/>)
/// or the code of a watch's ERROR event (<see cref="KubernetesException"/>), with the message of its Status object.
/// </summary>
public readonly record struct KubernetesApiError(HttpStatusCode StatusCode, string Message)
{
    private const int MaxQuotedBody = 200;

    /// <summary>The API server's answer carried by <paramref name="exception"/>, or null for any other failure (transport, timeout).</summary>
    public static KubernetesApiError? From(Exception exception) => exception switch
    {
        HttpOperationException { Response: { } response } => new KubernetesApiError(response.StatusCode,
            StatusMessage(response.Content) ?? Quote(response.Content) ?? response.ReasonPhrase ?? ""),
        KubernetesException { Status: { } status } => new KubernetesApiError(
            status.Code is { } code ? (HttpStatusCode)code : HttpStatusCode.InternalServerError,
            status.Message ?? status.Reason ?? "ERROR event"),
        _ => null,
    };

    /// <summary>The <c>message</c> of a Kubernetes Status object, or null when the text is not one.</summary>
    private static string? StatusMessage(string? body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return null;
        }
        try
        {
            return KubernetesJson.Deserialize<V1Status>(body) is { Message: { Length: > 0 } message } ? message : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string? Quote(string? body) =>
        string.IsNullOrWhiteSpace(body) ? null : body.Length > MaxQuotedBody ? body[..MaxQuotedBody] : body;
}
