namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// Kubernetes objects as plain maps and lists, in the order they are written. Null values are left out, so optional
/// fields read as what they are: <c>Map(("storageClassName", options.StorageClass))</c>.
/// </summary>
internal static class Manifest
{
    public static Dictionary<string, object?> Map(params (string Key, object? Value)[] entries)
    {
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in entries)
        {
            if (value is not null)
            {
                map[key] = value;
            }
        }
        return map;
    }

    public static List<object> List(params object[] items) => [.. items];

    /// <summary>An object with <c>apiVersion</c>, <c>kind</c>, <c>metadata</c> (name and labels) and the given top-level fields.</summary>
    public static Dictionary<string, object?> Object(string apiVersion, string kind, string name, Dictionary<string, object?>? labels, params (string Key, object? Value)[] body)
    {
        var metadata = Map(("name", name), ("labels", labels));
        return Map([("apiVersion", apiVersion), ("kind", kind), ("metadata", metadata), .. body]);
    }

    /// <summary>An HTTP GET probe on the container's port named <c>http</c>; periods and timeouts in seconds.</summary>
    public static Dictionary<string, object?> HttpProbe(string path, int periodSeconds, int failureThreshold, int timeoutSeconds = 3) => Map(
        ("httpGet", Map(("path", path), ("port", "http"))),
        ("periodSeconds", periodSeconds),
        ("timeoutSeconds", timeoutSeconds),
        ("failureThreshold", failureThreshold));

    public static Dictionary<string, object?> EmptyDir(string name, string? medium = null, string? sizeLimit = null) =>
        Map(("name", name), ("emptyDir", Map(("medium", medium), ("sizeLimit", sizeLimit))));

    public static Dictionary<string, object?> Mount(string name, string path) => Map(("name", name), ("mountPath", path));

    public static Dictionary<string, object?> ReadOnlyMount(string name, string path) => Map(("name", name), ("mountPath", path), ("readOnly", true));
}
