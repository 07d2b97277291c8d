using System.ComponentModel;
using System.Text.Json;
using System.Text.Json.Nodes;
using VllmStack.Tests.Infrastructure;

namespace VllmStack.Tests.Publishing;

/// <summary>One schema violation (or unknown apiVersion/kind) of one object.</summary>
public sealed record SchemaError(string? ApiVersion, string? Kind, string? Name, string Message)
{
    public override string ToString() => $"{Kind} {ApiVersion} '{Name}': {Message}";
}

/// <summary>What the validator found in a YAML stream: how many objects it read, and every error.</summary>
public sealed record SchemaValidationResult(int Objects, IReadOnlyList<SchemaError> Errors)
{
    public bool IsValid => Errors.Count == 0;

    public override string ToString() =>
        IsValid ? $"{Objects} objects, all valid" : $"{Objects} objects, {Errors.Count} errors:\n" + string.Join("\n", Errors);
}

/// <summary>
/// Validates Kubernetes manifests (e.g. <c>kubectl kustomize</c> output) against the schemas of the npm packages
/// <c>kubernetes-models</c> and <c>@kubernetes-models/prometheus-operator</c>, by running <c>validate.mjs</c> under node.
/// The packages are installed once per process into <c>npm-validators/</c> beside the test assembly (under bin/, so
/// git ignores it) and reused across runs while their pinned versions are there.
/// </summary>
public static class KubernetesSchemaValidator
{
    // The newest releases of both model packages declare node >= 22; these are the newest that support node 20,
    // the node of this project's machines. Bump all of them together (prometheus-operator 4.x pairs with models 4.x).
    private static readonly IReadOnlyDictionary<string, string> Packages = new Dictionary<string, string>
    {
        ["kubernetes-models"] = "4.5.1",
        ["@kubernetes-models/prometheus-operator"] = "4.4.4",
        ["yaml"] = "2.9.1",
    };

    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan ValidateTimeout = TimeSpan.FromSeconds(60);
    private static readonly SemaphoreSlim InstallGate = new(1, 1);
    private static volatile bool _installed;

    /// <summary>The folder holding node_modules and the copy of validate.mjs that node runs.</summary>
    public static string InstallDirectory { get; } = Path.Combine(AppContext.BaseDirectory, "npm-validators");

    /// <summary>Validates every document of a multi-document YAML string.</summary>
    /// <exception cref="InvalidOperationException">The YAML does not parse, or node/npm failed.</exception>
    /// <exception cref="TimeoutException">npm install or the validation took too long; the process tree was killed.</exception>
    public static async Task<SchemaValidationResult> ValidateAsync(string yaml, CancellationToken ct = default)
    {
        var directory = await EnsureInstalledAsync(ct);
        var input = Path.Combine(Path.GetTempPath(), $"k8s-schema-{Guid.NewGuid():N}.yaml");
        try
        {
            await File.WriteAllTextAsync(input, yaml, ct);
            var run = await RunAsync("node", [Path.Combine(directory, "validate.mjs"), input], directory, ValidateTimeout, ct);
            // 0 and 1 both mean "validated" (1: with errors); anything else is a usage/parse failure or a crash.
            if (run.ExitCode is not (0 or 1))
            {
                throw new InvalidOperationException($"validate.mjs exited with code {run.ExitCode}: {run.StandardError}");
            }
            // Node itself exits 1 with no JSON when the script cannot even load (e.g. a broken install): say why.
            var result = TryParse(run.StandardOutput) ?? throw new InvalidOperationException(
                $"validate.mjs printed no result (exit code {run.ExitCode}): {run.StandardError}");
            if (result.IsValid != (run.ExitCode == 0))
            {
                throw new InvalidOperationException($"validate.mjs exit code {run.ExitCode} contradicts its output: {run.StandardOutput}");
            }
            return result;
        }
        finally
        {
            File.Delete(input);
        }
    }

    private static SchemaValidationResult? TryParse(string json)
    {
        try
        {
            if (JsonNode.Parse(json) is not JsonObject root || root["objects"] is not JsonValue objects || root["errors"] is not JsonArray errors)
            {
                return null;
            }
            return new SchemaValidationResult((int)objects, errors
                .Select(e => new SchemaError(
                    (string?)e?["apiVersion"], (string?)e?["kind"], (string?)e?["name"], (string?)e?["message"] ?? ""))
                .ToList());
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            return null; // not JSON, or a field of the wrong type
        }
    }

    /// <summary>Installs the pinned packages once per process; a failed or cancelled attempt is retried by the next caller.</summary>
    private static async Task<string> EnsureInstalledAsync(CancellationToken ct)
    {
        if (_installed)
        {
            return InstallDirectory;
        }
        await InstallGate.WaitAsync(ct);
        try
        {
            if (!_installed)
            {
                Directory.CreateDirectory(InstallDirectory);
                // Another test process (a second `dotnet test` on the same output) may be installing into the same folder.
                await using (await AcquireFileLockAsync(Path.Combine(InstallDirectory, ".install.lock"), ct))
                {
                    if (!PinnedVersionsInstalled())
                    {
                        await WritePackageJsonAsync(ct);
                        var npm = OperatingSystem.IsWindows() ? "npm.cmd" : "npm";
                        var run = await RunAsync(npm,
                            ["install", "--no-audit", "--no-fund", "--no-update-notifier", "--prefix", InstallDirectory],
                            InstallDirectory, InstallTimeout, ct);
                        if (run.ExitCode != 0 || !PinnedVersionsInstalled())
                        {
                            throw new InvalidOperationException(
                                $"npm install failed (exit code {run.ExitCode}):\n{run.StandardOutput}\n{run.StandardError}");
                        }
                    }
                    // Always refresh the copy: node resolves the packages relative to the script, so it must sit beside
                    // node_modules, and a rebuilt test project may carry a newer script than a reused install.
                    File.Copy(Path.Combine(AppContext.BaseDirectory, "Publishing", "SchemaValidation", "validate.mjs"),
                        Path.Combine(InstallDirectory, "validate.mjs"), overwrite: true);
                }
                _installed = true;
            }
            return InstallDirectory;
        }
        finally
        {
            InstallGate.Release();
        }
    }

    private static bool PinnedVersionsInstalled() => Packages.All(p =>
    {
        var manifest = Path.Combine(InstallDirectory, "node_modules", p.Key, "package.json");
        if (!File.Exists(manifest))
        {
            return false;
        }
        using var doc = JsonDocument.Parse(File.ReadAllText(manifest));
        return doc.RootElement.TryGetProperty("version", out var version) && version.GetString() == p.Value;
    });

    private static Task WritePackageJsonAsync(CancellationToken ct)
    {
        // Exact versions, so a reinstall after a bump never floats to a newer release.
        var package = new JsonObject
        {
            ["name"] = "vllmstack-schema-validators",
            ["private"] = true,
            ["dependencies"] = new JsonObject(Packages.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        };
        return File.WriteAllTextAsync(Path.Combine(InstallDirectory, "package.json"), package.ToJsonString(), ct);
    }

    /// <summary>Holds an exclusive lock on <paramref name="path"/>, polling until another process lets go.</summary>
    private static async Task<FileStream> AcquireFileLockAsync(string path, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(InstallTimeout + TimeSpan.FromMinutes(1));
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException)
            {
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(500), timeout.Token);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new TimeoutException($"Another process held {path} for too long.");
                }
            }
        }
    }

    /// <summary>node or npm, run to completion by the tests' one process runner; a missing program is said plainly.</summary>
    private static async Task<CommandRun> RunAsync(string program, IEnumerable<string> args, string workingDirectory, TimeSpan timeout, CancellationToken ct)
    {
        try
        {
            return await ProgramProcess.RunToExitAsync(program, args, timeout, workingDirectory, ct);
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"Could not start {program}: is node (with npm) on PATH?", e);
        }
    }
}
