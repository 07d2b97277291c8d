namespace VllmStack.Hosting.Common;

/// <summary>Files other processes poll (a router's engine list and adapter catalogue).</summary>
internal static class AtomicFile
{
    /// <summary>
    /// Writes <paramref name="content"/> to <paramref name="path"/> whole, then renames it over the old file, so that a
    /// reader never sees half a file. Creates the directory if needed.
    /// </summary>
    public static void Write(string path, string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, content);
        File.Move(temporary, path, overwrite: true);
    }
}
