using System.Globalization;

namespace VllmStack.Tests.Infrastructure;

/// <summary>
/// Processes started on behalf of a process, read from <c>/proc</c>: its descendants, and the processes that watch one
/// of them with <c>--monitor PID</c> — DCP detaches its API server from the app host and follows it by that flag.
/// </summary>
internal static class ProcessTree
{
    /// <summary>Every live process started on behalf of <paramref name="root"/> (not <paramref name="root"/> itself).</summary>
    public static HashSet<int> Of(int root)
    {
        var processes = Snapshot();
        var tracked = new HashSet<int> { root };
        bool grew;
        do
        {
            grew = false;
            foreach (var (pid, (parent, monitors)) in processes)
            {
                if (!tracked.Contains(pid) && (tracked.Contains(parent) || monitors.Any(tracked.Contains)))
                {
                    grew |= tracked.Add(pid);
                }
            }
        }
        while (grew);
        tracked.Remove(root);
        return tracked;
    }

    /// <summary>The direct children of <paramref name="pid"/>.</summary>
    public static IReadOnlyList<int> Children(int pid) =>
        [.. Snapshot().Where(p => p.Value.Parent == pid).Select(p => p.Key)];

    /// <summary>Running, or stopped, but not a zombie waiting to be reaped.</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state is not ("Z" or "X");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>The command line of <paramref name="pid"/>, arguments separated by spaces ("" once it has gone).</summary>
    public static string CommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>Waits until none of <paramref name="pids"/> is alive, at most <paramref name="bound"/>; those still alive.</summary>
    public static async Task<IReadOnlyList<int>> WaitForExitAsync(IEnumerable<int> pids, TimeSpan bound)
    {
        var deadline = DateTime.UtcNow + bound;
        var alive = pids.Where(IsAlive).ToList();
        while (alive.Count > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
            alive = [.. alive.Where(IsAlive)];
        }
        return alive;
    }

    /// <summary>Describes processes for an assertion message: <c>pid: command line</c>.</summary>
    public static string Describe(IEnumerable<int> pids) => string.Join("; ", pids.Select(p => $"{p}: {CommandLine(p)}"));

    private static Dictionary<int, (int Parent, int[] Monitors)> Snapshot()
    {
        var result = new Dictionary<int, (int, int[])>();
        foreach (var directory in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || !IsAlive(pid))
            {
                continue;
            }
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                var parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
                var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
                var monitors = args.Zip(args.Skip(1))
                    .Where(a => a.First == "--monitor" && int.TryParse(a.Second, CultureInfo.InvariantCulture, out _))
                    .Select(a => int.Parse(a.Second, CultureInfo.InvariantCulture))
                    .ToArray();
                result[pid] = (parent, monitors);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
                // The process ended while being read.
            }
        }
        return result;
    }
}
