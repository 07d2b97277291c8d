using System.Text;
using YamlDotNet.Serialization;
using static VllmStack.Hosting.Kubernetes.Manifest;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// What the publisher writes: one YAML file per resource, ConfigMaps and the Secret as kustomize generators (so pods roll
/// when configuration changes), extra files (the Grafana dashboard), and the kustomization.yaml that ties them together.
/// </summary>
internal sealed class ManifestBundle(string ns)
{
    private static readonly ISerializer Yaml = new SerializerBuilder().WithQuotingNecessaryStrings().DisableAliases().Build();

    private readonly SortedDictionary<string, List<Dictionary<string, object?>>> _files = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, SortedDictionary<string, string>> _configMaps = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, SecretKey> _secretKeys = new(StringComparer.Ordinal);
    private readonly List<(string Name, string File, string Content, Dictionary<string, object?> Labels)> _fileConfigMaps = [];

    public string Namespace { get; } = ns;

    /// <summary>Objects written to <paramref name="file"/> (relative to the output folder), after those already there.</summary>
    public void Add(string file, params Dictionary<string, object?>[] objects)
    {
        if (!_files.TryGetValue(file, out var list))
        {
            _files[file] = list = [];
        }
        list.AddRange(objects);
    }

    /// <summary>A ConfigMap generated from <c>config/NAME.env</c>; settings of the same map are merged.</summary>
    /// <exception cref="KubernetesPublishException">A value spans lines, which an env file cannot hold.</exception>
    public void AddConfigMap(string name, IReadOnlyDictionary<string, string> data)
    {
        if (!_configMaps.TryGetValue(name, out var existing))
        {
            _configMaps[name] = existing = new SortedDictionary<string, string>(StringComparer.Ordinal);
        }
        foreach (var (key, value) in data)
        {
            if (value.Contains('\n', StringComparison.Ordinal))
            {
                throw new KubernetesPublishException($"Setting {key} of ConfigMap {name} spans lines, which an env file cannot hold.");
            }
            existing[key] = value;
        }
    }

    /// <summary>A key of the Secret the user fills in <c>secrets.env</c>.</summary>
    public void AddSecretKey(string key, SecretKey secret) => _secretKeys[key] = secret;

    /// <summary>A ConfigMap holding one file (the Grafana dashboard), with a fixed name so that it is replaced, not duplicated.</summary>
    public void AddFileConfigMap(string name, string file, string content, Dictionary<string, object?> labels) => _fileConfigMaps.Add((name, file, content, labels));

    /// <summary>
    /// Writes everything under <paramref name="directory"/> (created if needed); values already filled in secrets.env are
    /// kept. Returns the files written, relative to the folder.
    /// </summary>
    /// <exception cref="KubernetesPublishException">The folder or a file in it cannot be written.</exception>
    public async Task<IReadOnlyList<string>> WriteAsync(string directory, CancellationToken cancellationToken)
    {
        try
        {
            return await WriteFilesAsync(directory, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KubernetesPublishException($"Cannot write the manifests to {directory}: {e.Message}");
        }
    }

    private async Task<IReadOnlyList<string>> WriteFilesAsync(string directory, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(directory);
        var written = new List<string>();
        async Task Write(string relative, string content)
        {
            var path = Path.Combine(directory, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await File.WriteAllTextAsync(path, content, new UTF8Encoding(false), cancellationToken).ConfigureAwait(false);
            written.Add(relative);
        }
        foreach (var (file, objects) in _files)
        {
            await Write(file, string.Join("---\n", objects.Select(o => Yaml.Serialize(o)))).ConfigureAwait(false);
        }
        foreach (var (name, data) in _configMaps)
        {
            await Write($"config/{name}.env", string.Concat(data.Select(d => $"{d.Key}={d.Value}\n"))).ConfigureAwait(false);
        }
        foreach (var (_, file, content, _) in _fileConfigMaps)
        {
            await Write(file, content).ConfigureAwait(false);
        }
        var secrets = await SecretsFile.RenderAsync(Path.Combine(directory, SecretsFile.Name), _secretKeys, cancellationToken).ConfigureAwait(false);
        await Write(SecretsFile.Name, secrets).ConfigureAwait(false);
        await Write("kustomization.yaml", Yaml.Serialize(Kustomization())).ConfigureAwait(false);
        return written;
    }

    private Dictionary<string, object?> Kustomization()
    {
        List<object> configMaps = [.. _configMaps.Keys.Select(name => Map(("name", name), ("envs", List($"config/{name}.env"))))];
        configMaps.AddRange(_fileConfigMaps.Select(f => Map(
            ("name", f.Name),
            ("files", List(f.File)),
            ("options", Map(("disableNameSuffixHash", true), ("labels", f.Labels))))));
        return Map(
            ("apiVersion", "kustomize.config.k8s.io/v1beta1"),
            ("kind", "Kustomization"),
            ("namespace", Namespace),
            ("resources", _files.Keys.Cast<object>().ToList()),
            ("configMapGenerator", configMaps),
            ("secretGenerator", List(Map(("name", PodEnvironment.SecretName), ("envs", List(SecretsFile.Name))))));
    }
}
