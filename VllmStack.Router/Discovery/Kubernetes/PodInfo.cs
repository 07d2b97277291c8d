namespace VllmStack.Router.Discovery;

/// <summary>A pod as discovery cares about it: a stable key, and its engine URL when it may receive traffic.</summary>
internal sealed record PodInfo(string Key, Uri? Engine);
