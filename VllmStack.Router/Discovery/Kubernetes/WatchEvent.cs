namespace VllmStack.Router.Discovery;

/// <summary>One line of a watch stream. <see cref="Pod"/> is null for bookmarks, errors and unreadable objects.</summary>
internal readonly record struct WatchEvent(WatchEventType Type, PodInfo? Pod, string? ResourceVersion, int? ErrorCode, string? ErrorMessage);

internal enum WatchEventType
{
    Unknown,
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}
