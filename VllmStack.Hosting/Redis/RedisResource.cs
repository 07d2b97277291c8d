using System.Globalization;
using System.Text.RegularExpressions;
using VllmStack.Hosting.ApplicationModel;
using VllmStack.Hosting.Orchestration;

namespace VllmStack.Hosting.Redis;

/// <summary>
/// A Redis-compatible server (one replica) reached through the connection string <c>127.0.0.1:port[,password=…]</c>.
/// How it runs is chosen once, when it first starts: <c>redis-server</c> on PATH, else the Garnet dotnet tool,
/// else a <c>redis:7</c> container.
/// </summary>
public sealed partial class RedisResource(string name, string? toolManifestDirectory) : Resource(name), IRunnableResource, IPreparedResource, IResourceWithConnectionString
{
    public const string EndpointName = "tcp";

    public const string ContainerImage = "redis:7";

    public const string GarnetTool = "garnet-server";

    /// <summary>The version the repository's tool manifest pins, quoted in advice to install it.</summary>
    public const string GarnetToolVersion = "2.2.8";

    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RestoreTimeout = TimeSpan.FromSeconds(180);

    private string? _serverPath;
    private string? _version;

    /// <summary>The folder whose tool manifest declares <c>garnet-server</c>; Garnet runs with it as working directory.</summary>
    public string? ToolManifestDirectory { get; set; } = toolManifestDirectory;

    /// <summary>When set, the server requires this password (<c>AUTH</c>) and the connection string carries it.</summary>
    public ParameterResource? Password { get; set; }

    /// <summary>Overrides detection (tests pick Garnet even where redis-server is installed).</summary>
    public RedisMode? ForcedMode { get; set; }

    public RedisMode? Mode { get; private set; }

    public string KindDescription => Mode switch
    {
        RedisMode.Server => _version is null ? "redis-server (PATH)" : $"redis-server {_version} (PATH)",
        RedisMode.Garnet => _version is null ? "Garnet (dotnet tool)" : $"Garnet {_version} (dotnet tool)",
        RedisMode.Container => $"container {ContainerImage}",
        _ => "Redis",
    };

    public string GetConnectionString(ResourceRuntime runtime)
    {
        var endpoint = runtime.Endpoints(this, EndpointName).FirstOrDefault() ?? throw new InvalidOperationException(
            $"Redis '{Name}' is not running yet, so it has no address: make the resources that use it wait for it (.WaitFor({Name})).");
        var address = $"{endpoint.Host}:{endpoint.Port.ToString(CultureInfo.InvariantCulture)}";
        return PasswordValue(runtime) is { } password ? $"{address},password={password}" : address;
    }

    /// <summary>Picks the mode once (probing only as far as needed); throws, saying what to install, when none is possible.</summary>
    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        Mode ??= await ChooseAsync(Name, ForcedMode, ToolManifestDirectory, mode => AvailableAsync(mode, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>The forced mode if it is available, else the first available in preference order.</summary>
    internal static async Task<RedisMode> ChooseAsync(string name, RedisMode? forced, string? toolManifestDirectory, Func<RedisMode, Task<bool>> available)
    {
        if (forced is { } mode)
        {
            return await available(mode).ConfigureAwait(false) ? mode : throw new InvalidOperationException(
                $"Redis '{name}' was told to run as {mode}, which this machine cannot: {Advice(mode, toolManifestDirectory)}.");
        }
        foreach (var candidate in new[] { RedisMode.Server, RedisMode.Garnet, RedisMode.Container })
        {
            if (await available(candidate).ConfigureAwait(false))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException(
            $"Redis '{name}' cannot start: nothing here can run it. Any one of these will do: {Advice(RedisMode.Server, toolManifestDirectory)}; " +
            $"or {Advice(RedisMode.Garnet, toolManifestDirectory)}; or {Advice(RedisMode.Container, toolManifestDirectory)}.");
    }

    private static string Advice(RedisMode mode, string? toolManifestDirectory) => mode switch
    {
        RedisMode.Server => "install redis-server on PATH (apt-get install redis-server)",
        RedisMode.Garnet when toolManifestDirectory is null =>
            $"add Garnet to the repository's tool manifest (dotnet tool install {GarnetTool} --version {GarnetToolVersion}, in the repository root)",
        RedisMode.Garnet =>
            $"restore Garnet (dotnet tool restore, in {toolManifestDirectory}; its tool manifest must list {GarnetTool} {GarnetToolVersion})",
        _ => "install docker or podman, with its engine running",
    };

    /// <summary>Probes one mode; remembers the program and version the chosen one will use.</summary>
    private async Task<bool> AvailableAsync(RedisMode mode, CancellationToken cancellationToken)
    {
        switch (mode)
        {
            case RedisMode.Server:
                var path = Executables.Which("redis-server");
                var server = path is null ? null : await Executables.OutputAsync(path, ["--version"], null, ProbeTimeout, cancellationToken).ConfigureAwait(false);
                if (server is null)
                {
                    return false;
                }
                (_serverPath, _version) = (path, ServerVersion().Match(server) is { Success: true } m ? m.Groups[1].Value : null);
                return true;
            case RedisMode.Garnet:
                if (ToolManifestDirectory is null)
                {
                    return false;
                }
                var garnet = await GarnetVersionOutputAsync(cancellationToken).ConfigureAwait(false);
                if (garnet is null)
                {
                    // A fresh clone has the manifest but has not restored it yet: do it once, as `dotnet run` restores packages.
                    await Executables.OutputAsync("dotnet", ["tool", "restore"], ToolManifestDirectory, RestoreTimeout, cancellationToken).ConfigureAwait(false);
                    garnet = await GarnetVersionOutputAsync(cancellationToken).ConfigureAwait(false);
                }
                if (garnet is null)
                {
                    return false;
                }
                _version = GarnetVersion().Match(garnet) is { Success: true } g ? g.Groups[1].Value : null;
                return true;
            default:
                return await ContainerRuntime.FindAsync().ConfigureAwait(false) is not null;
        }
    }

    private Task<string?> GarnetVersionOutputAsync(CancellationToken cancellationToken) =>
        Executables.OutputAsync("dotnet", ["tool", "run", GarnetTool, "--", "--version"], ToolManifestDirectory, ProbeTimeout, cancellationToken);

    internal LaunchSpec Launch(ReplicaContext context)
    {
        if (context.Replica > 0)
        {
            throw new InvalidOperationException($"Redis '{Name}' runs as a single replica.");
        }
        var port = context.Port(EndpointName).ToString(CultureInfo.InvariantCulture);
        var password = PasswordValue(context.Runtime);
        switch (Mode ?? throw new InvalidOperationException($"Redis '{Name}' has not been prepared."))
        {
            case RedisMode.Server:
                // An in-memory cache: no snapshots, no append-only file, loopback only.
                List<string> server = ["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
                if (password is not null)
                {
                    server.AddRange(["--requirepass", password]);
                }
                return new LaunchSpec(_serverPath!, server, null, KindDescription);
            case RedisMode.Garnet:
                // dotnet finds the tool through the manifest above the working directory.
                List<string> garnet = ["tool", "run", GarnetTool, "--", "--port", port, "--bind", "127.0.0.1"];
                if (password is not null)
                {
                    garnet.AddRange(["--auth", "Password", "--password", password]);
                }
                return new LaunchSpec("dotnet", garnet, ToolManifestDirectory, KindDescription);
            default:
                // The image listens on 6379 inside; published on loopback only.
                List<string> container = ["run", "--rm", "--name", $"vllmstack-{Name}-{Environment.ProcessId}", "-p", $"127.0.0.1:{port}:6379",
                    ContainerImage, "redis-server", "--save", "", "--appendonly", "no"];
                if (password is not null)
                {
                    container.AddRange(["--requirepass", password]);
                }
                return new LaunchSpec(ContainerRuntime.Find()!, container, null, KindDescription);
        }
    }

    internal Task<bool> CheckHealthAsync(ReplicaContext context, CancellationToken cancellationToken) =>
        RedisPing.PingAsync(context.Port(EndpointName), PasswordValue(context.Runtime), cancellationToken);

    private string? PasswordValue(ResourceRuntime runtime) => Password is null ? null : runtime.ParameterValue(Password);

    // "Redis server v=7.0.15 sha=…" → 7.0
    [GeneratedRegex(@"v=(\d+\.\d+)")]
    private static partial Regex ServerVersion();

    // "GarnetServer 2.2.8+5cc8f3f…" → 2.2.8
    [GeneratedRegex(@"(\d+\.\d+\.\d+)")]
    private static partial Regex GarnetVersion();
}
