using System.Text;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>A key of the stack's Secret: what it is, and how to make a value when the user has given none (null: leave it empty).</summary>
internal sealed record SecretKey(string Description, Func<string>? Generate = null);

/// <summary>
/// <c>secrets.env</c>, the file the Secret is generated from: one <c>key=value</c> line per key after a comment saying
/// what it is. Publishing never writes a value it was given; it keeps the values already in the file (the user's), and
/// fills an empty generated key (a Redis password) with a new random value, so that the stack installs as written.
/// </summary>
internal static class SecretsFile
{
    public const string Name = "secrets.env";

    /// <summary>The file's new text, keeping the values of <paramref name="existingPath"/> (if it exists).</summary>
    public static async Task<string> RenderAsync(string existingPath, IReadOnlyDictionary<string, SecretKey> keys, CancellationToken cancellationToken)
    {
        var filled = await ReadValuesAsync(existingPath, cancellationToken).ConfigureAwait(false);
        var text = new StringBuilder();
        text.Append("# Secret values of the stack: fill them in before `kubectl apply -k`, and keep this file out of version control.\n");
        text.Append("# An empty value means \"none\". Publishing again keeps the values filled here.\n");
        foreach (var (key, secret) in keys.OrderBy(k => k.Key, StringComparer.Ordinal))
        {
            var value = filled.GetValueOrDefault(key, "");
            if (value.Length == 0 && secret.Generate is { } generate)
            {
                value = generate();
            }
            text.Append("\n# ").Append(secret.Description).Append('\n');
            text.Append(key).Append('=').Append(value).Append('\n');
        }
        return text.ToString();
    }

    private static async Task<Dictionary<string, string>> ReadValuesAsync(string path, CancellationToken cancellationToken)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!File.Exists(path))
        {
            return values;
        }
        foreach (var line in await File.ReadAllLinesAsync(path, cancellationToken).ConfigureAwait(false))
        {
            var equals = line.IndexOf('=', StringComparison.Ordinal);
            if (!line.StartsWith('#') && equals > 0)
            {
                values[line[..equals].Trim()] = line[(equals + 1)..];
            }
        }
        return values;
    }
}
