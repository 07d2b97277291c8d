using System.Net;

namespace VllmStack.Router.Discovery;

/// <summary>A non-success answer of the API server (HTTP status, or the code of a watch ERROR event).</summary>
internal sealed class KubernetesApiException(HttpStatusCode statusCode, string verb, string message) : Exception(message)
{
    public HttpStatusCode StatusCode { get; } = statusCode;

    /// <summary><c>list</c> or <c>watch</c>: the RBAC verb the failed call needed.</summary>
    public string Verb { get; } = verb;
}
