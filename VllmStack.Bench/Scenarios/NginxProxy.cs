using System.Diagnostics;
using System.Globalization;

namespace VllmStack.Bench.Scenarios;

/// <summary>
/// Debian's nginx as a plain keep-alive reverse proxy in front of one upstream, the reference a proxy's overhead is
/// judged against: its own prefix folder and config in a temporary directory, a free loopback port, response buffering
/// off (server-sent events pass at once), stopped with its workers by their own process ids.
/// </summary>
public sealed class NginxProxy : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _directory;

    private NginxProxy(Process process, string directory, Uri url)
    {
        _process = process;
        _directory = directory;
        Url = url;
    }

    public Uri Url { get; }

    /// <summary>True when an <c>nginx</c> binary is on PATH (or in /usr/sbin, where Debian puts it).</summary>
    public static string? Find() =>
        new[] { Environment.GetEnvironmentVariable("PATH") ?? "", "/usr/sbin" }
            .SelectMany(p => p.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            .Select(d => Path.Combine(d, "nginx"))
            .FirstOrDefault(File.Exists);

    public static async Task<NginxProxy> StartAsync(string nginx, Uri upstream, CancellationToken cancellationToken)
    {
        var directory = Directory.CreateTempSubdirectory("vllmstack-nginx-").FullName;
        var port = LoopbackPort.Free();
        var config = Path.Combine(directory, "nginx.conf");
        var temp = Path.Combine(directory, "temp");
        await File.WriteAllTextAsync(config, $$"""
            daemon off;
            worker_processes auto;
            pid {{directory}}/nginx.pid;
            error_log {{directory}}/error.log warn;
            events { worker_connections 4096; }
            http {
                access_log off;
                client_body_temp_path {{temp}}/body;
                proxy_temp_path {{temp}}/proxy;
                fastcgi_temp_path {{temp}}/fastcgi;
                uwsgi_temp_path {{temp}}/uwsgi;
                scgi_temp_path {{temp}}/scgi;
                upstream engine {
                    server {{upstream.Host}}:{{upstream.Port}};
                    keepalive 256;
                }
                server {
                    listen 127.0.0.1:{{port}};
                    location / {
                        proxy_pass http://engine;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_buffering off;
                    }
                }
            }
            """, cancellationToken);
        Directory.CreateDirectory(temp);
        var process = Process.Start(new ProcessStartInfo(nginx, ["-p", directory, "-c", config]) { RedirectStandardError = true, RedirectStandardOutput = true })
            ?? throw new InvalidOperationException("nginx did not start");
        process.ErrorDataReceived += (_, _) => { };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        var proxy = new NginxProxy(process, directory, new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/"));
        try
        {
            await LoopbackPort.WaitUntilAcceptingAsync(port, process, cancellationToken);
            return proxy;
        }
        catch
        {
            await proxy.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // The master and its workers, each by its own id.
            _process.Kill(entireProcessTree: true);
        }
        await _process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A worker still closing its log; the folder is in the temporary directory.
        }
    }
}
