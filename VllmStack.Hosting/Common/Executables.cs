using System.Diagnostics;

namespace VllmStack.Hosting.Common;

/// <summary>Finding programs on PATH and running short probe commands (<c>redis-server --version</c>, <c>docker info</c>).</summary>
public static class Executables
{
    /// <summary>The full path of <paramref name="name"/> in a PATH folder, or null.</summary>
    public static string? Which(string name)
    {
        foreach (var directory in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>
    /// Standard output of a command that exits 0 within <paramref name="timeout"/>; null when it fails, is missing or takes
    /// longer (it is then killed with its children). The application model is built synchronously, so probes are too.
    /// </summary>
    public static string? Output(string fileName, IEnumerable<string> args, string? workingDirectory, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        Process? process;
        try
        {
            process = Process.Start(info);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
        if (process is null)
        {
            return null;
        }
        using (process)
        {
            var output = new System.Text.StringBuilder();
            // Both streams report their end with null data; only then has every line been delivered. Not disposed: a
            // stream held open by a left-behind child may still signal after this method returned.
            var streamsClosed = new CountdownEvent(2);
            process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null)
                {
                    streamsClosed.Signal();
                    return;
                }
                lock (output)
                {
                    output.AppendLine(e.Data);
                }
            };
            // Read (and drop) standard error too, so that a chatty probe cannot block on a full pipe.
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null)
                {
                    streamsClosed.Signal();
                }
            };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(TimeSpan.FromSeconds(5));
                return null;
            }
            // WaitForExit(timeout) returns when the process exits, possibly before its last lines were read (and a child
            // it left behind may still hold the pipe): wait, bounded, for the end of both streams.
            streamsClosed.Wait(TimeSpan.FromSeconds(5));
            lock (output)
            {
                return process.ExitCode == 0 ? output.ToString() : null;
            }
        }
    }
}
