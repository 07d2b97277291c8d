namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// A reason the application cannot be published to Kubernetes that the user can act on (a bad option value, a resource
/// the publisher has no form for). The publish step reports its message as one line and fails; it is not a bug, so no
/// stack trace goes with it.
/// </summary>
public sealed class KubernetesPublishException(string message) : Exception(message);
