namespace VllmStack.Hosting.Redis;

/// <summary>Finds the folder whose local tool manifest <c>dotnet tool run</c> resolves, the way the dotnet CLI looks for it.</summary>
internal static class DotnetToolManifest
{
    /// <summary>The first folder, walking up from each start path in turn, that holds <c>.config/dotnet-tools.json</c> (or <c>dotnet-tools.json</c>).</summary>
    public static string? FindDirectory(IEnumerable<string> startPaths)
    {
        foreach (var start in startPaths)
        {
            var directory = Directory.Exists(start) ? new DirectoryInfo(start) : new FileInfo(start).Directory;
            for (; directory is not null; directory = directory.Parent)
            {
                if (File.Exists(Path.Combine(directory.FullName, ".config", "dotnet-tools.json"))
                    || File.Exists(Path.Combine(directory.FullName, "dotnet-tools.json")))
                {
                    return directory.FullName;
                }
            }
        }
        return null;
    }
}
