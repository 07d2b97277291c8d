using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace VllmStack.Router.Discovery;

/// <summary>Reads the parts of Pod, PodList, watch event and Status JSON that discovery needs; anything else is ignored.</summary>
internal static class PodJson
{
    /// <summary>Adds the page's pods to <paramref name="pods"/>; returns the list's resource version and continue token.</summary>
    public static (string ResourceVersion, string? Continue) ReadList(JsonElement list, int port, List<PodInfo> pods)
    {
        if (list.ValueKind != JsonValueKind.Object)
        {
            throw new JsonException("A pod list must be a JSON object.");
        }
        if (list.TryGetProperty("items", out var items) && items.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in items.EnumerateArray())
            {
                if (ReadPod(item, port) is { } pod)
                {
                    pods.Add(pod);
                }
            }
        }
        var metadata = Property(list, "metadata");
        return (String(metadata, "resourceVersion") ?? "", String(metadata, "continue"));
    }

    public static WatchEvent ReadEvent(string line, int port)
    {
        using var document = JsonDocument.Parse(line);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new JsonException("A watch event must be a JSON object.");
        }
        var type = String(root, "type") switch
        {
            "ADDED" => WatchEventType.Added,
            "MODIFIED" => WatchEventType.Modified,
            "DELETED" => WatchEventType.Deleted,
            "BOOKMARK" => WatchEventType.Bookmark,
            "ERROR" => WatchEventType.Error,
            _ => WatchEventType.Unknown,
        };
        var obj = Property(root, "object");
        if (type == WatchEventType.Error)
        {
            // The object is a Status; its code is the HTTP status it stands for (410: resource version expired).
            int? code = Property(obj, "code") is { ValueKind: JsonValueKind.Number } number && number.TryGetInt32(out var value) ? value : null;
            return new WatchEvent(type, null, null, code, String(obj, "message") ?? String(obj, "reason"));
        }
        var pod = type == WatchEventType.Bookmark ? null : ReadPod(obj, port);
        return new WatchEvent(type, pod, String(Property(obj, "metadata"), "resourceVersion"), null, null);
    }

    public static PodInfo? ReadPod(JsonElement pod, int port)
    {
        var metadata = Property(pod, "metadata");
        var name = String(metadata, "name");
        // Keyed by uid so that a pod re-created under the same name is a different pod.
        var key = String(metadata, "uid") ?? (name is null ? null : $"{String(metadata, "namespace")}/{name}");
        return key is null ? null : new PodInfo(key, EngineUrl(pod, metadata, port));
    }

    /// <summary>An engine is a running, ready pod with an IP that is not being deleted (it is draining then).</summary>
    private static Uri? EngineUrl(JsonElement pod, JsonElement metadata, int port)
    {
        if (Property(metadata, "deletionTimestamp").ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
        {
            return null;
        }
        var status = Property(pod, "status");
        if (String(status, "phase") != "Running" || !IsReady(status))
        {
            return null;
        }
        if (!IPAddress.TryParse(String(status, "podIP"), out var ip))
        {
            return null;
        }
        var host = ip.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString();
        return new Uri($"http://{host}:{port}/");
    }

    private static bool IsReady(JsonElement status)
    {
        var conditions = Property(status, "conditions");
        if (conditions.ValueKind != JsonValueKind.Array)
        {
            return false;
        }
        foreach (var condition in conditions.EnumerateArray())
        {
            if (String(condition, "type") == "Ready")
            {
                return String(condition, "status") == "True";
            }
        }
        return false;
    }

    /// <summary>The named property of an object; <c>default</c> (Undefined) when absent or not an object.</summary>
    private static JsonElement Property(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) ? value : default;

    private static string? String(JsonElement element, string name) =>
        Property(element, name) is { ValueKind: JsonValueKind.String } value ? value.GetString() : null;
}
