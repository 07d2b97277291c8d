using System.Net;

namespace VllmStack.ServiceDefaults.Kubernetes;

/// <summary>A non-success answer of the API server (HTTP status, or the code of a watch ERROR event) with its Status message.</summary>
public sealed class KubernetesApiException(HttpStatusCode statusCode, string verb, string message) : Exception(message)
{
    public HttpStatusCode StatusCode { get; } = statusCode;

    /// <summary>The RBAC verb the failed call needed (<c>list</c>, <c>watch</c>, <c>get</c>, <c>patch</c>).</summary>
    public string Verb { get; } = verb;
}
