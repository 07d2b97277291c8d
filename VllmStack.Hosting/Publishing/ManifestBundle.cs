using System.Text;
using YamlDotNet.Serialization;
using static VllmStack.Hosting.Publishing.Manifest;

namespace VllmStack.Hosting.Publishing;

/// <summary>
/// What the publisher writes: one YAML file per resource, ConfigMaps and the Secret as kustomize generators (so pods roll
/// when configuration changes), extra files (the Grafana dashboard), and the kustomization.yaml that ties them together.
/// </summary>
internal sealed class ManifestBundle(string ns)
{
    public const string SecretsFile = "secrets.env";

    private static readonly ISerializer Yaml = new SerializerBuilder().WithQuotingNecessaryStrings().DisableAliases().Build();

    private readonly SortedDictionary<string, List<Dictionary<string, object?>>> _files = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, SortedDictionary<string, string>> _configMaps = new(StringComparer.Ordinal);
    private readonly SortedDictionary<string, string> _secretKeys = new(StringComparer.Ordinal);
    private readonly List<(string Name, string File, string Content, Dictionary<string, object?> Labels)> _fileConfigMaps = [];

    public string Namespace { get; } = ns;

    public void Add(string file, params Dictionary<string, object?>[] objects)
    {
        if (!_files.TryGetValue(file, out var list))
        {
            _files[file] = list = [];
        }
        list.AddRange(objects);
    }

    /// <summary>A ConfigMap generated from <c>config/NAME.env</c>.</summary>
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
                throw new InvalidOperationException($"Setting {key} of ConfigMap {name} spans lines, which an env file cannot hold.");
            }
            existing[key] = value;
        }
    }

    /// <summary>A key of the Secret the user fills in <c>secrets.env</c>, with a line saying what it is.</summary>
    public void AddSecretKey(string key, string description) => _secretKeys[key] = description;

    /// <summary>A ConfigMap holding one file (the Grafana dashboard), with a fixed name so that it is replaced, not duplicated.</summary>
    public void AddFileConfigMap(string name, string file, string content, Dictionary<string, object?> labels) => _fileConfigMaps.Add((name, file, content, labels));

    public IReadOnlyCollection<string> Files => _files.Keys;

    /// <summary>Writes everything under <paramref name="directory"/>; values already filled in secrets.env are kept.</summary>
    public async Task<IReadOnlyList<string>> WriteAsync(string directory, CancellationToken cancellationToken)
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
            await Write(file, ToYaml(objects)).ConfigureAwait(false);
        }
        foreach (var (name, data) in _configMaps)
        {
            await Write($"config/{name}.env", string.Concat(data.Select(d => $"{d.Key}={d.Value}\n"))).ConfigureAwait(false);
        }
        foreach (var (_, file, content, _) in _fileConfigMaps)
        {
            await Write(file, content).ConfigureAwait(false);
        }
        await Write(SecretsFile, await SecretsFileAsync(Path.Combine(directory, SecretsFile), cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
        await Write("kustomization.yaml", Yaml.Serialize(Kustomization())).ConfigureAwait(false);
        return written;
    }

    public static string ToYaml(IEnumerable<Dictionary<string, object?>> objects) =>
        string.Join("---\n", objects.Select(o => Yaml.Serialize(o)));

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
            ("secretGenerator", List(Map(("name", PodEnvironment.SecretName), ("envs", List(SecretsFile))))));
    }

    /// <summary>One <c>key=value</c> line per secret, each after a comment saying what it is; filled values survive a re-publish.</summary>
    private async Task<string> SecretsFileAsync(string path, CancellationToken cancellationToken)
    {
        var filled = new Dictionary<string, string>(StringComparer.Ordinal);
        if (File.Exists(path))
        {
            foreach (var line in await File.ReadAllLinesAsync(path, cancellationToken).ConfigureAwait(false))
            {
                var equals = line.IndexOf('=', StringComparison.Ordinal);
                if (!line.StartsWith('#') && equals > 0)
                {
                    filled[line[..equals].Trim()] = line[(equals + 1)..];
                }
            }
        }
        var text = new StringBuilder();
        text.Append("# Secret values of the stack: fill them in before `kubectl apply -k`, and keep this file out of version control.\n");
        text.Append("# An empty value means \"none\". Publishing again keeps the values filled here.\n");
        foreach (var (key, description) in _secretKeys)
        {
            text.Append("\n# ").Append(description).Append('\n');
            text.Append(key).Append('=').Append(filled.GetValueOrDefault(key, "")).Append('\n');
        }
        return text.ToString();
    }
}
