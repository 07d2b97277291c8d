using System.Text.Json;

namespace VllmStack.Router.Lora;

/// <summary>
/// The catalogue's JSON, as files and the ConfigMap hold it:
/// <c>{"adapters":[{"name":"sql-lora","base_model":"meta-llama/Llama-3.1-8B-Instruct","source":"/models/sql-lora","origin":"runtime"}]}</c>
/// (<c>origin</c> only for adapters added through the admin API).
/// </summary>
public static class LoraCatalogJson
{
    /// <exception cref="FormatException">Not a catalogue, or an entry without a name, base model or source, or a name twice.</exception>
    public static IReadOnlyList<LoraAdapter> Parse(string json)
    {
        var result = new List<LoraAdapter>();
        try
        {
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("adapters", out var adapters) || adapters.ValueKind != JsonValueKind.Array)
            {
                throw new FormatException("expected an object with an \"adapters\" array");
            }
            foreach (var entry in adapters.EnumerateArray())
            {
                var adapter = new LoraAdapter(Text(entry, "name"), Text(entry, "base_model"), Text(entry, "source"),
                    entry.TryGetProperty("origin", out var origin) && origin.ValueKind == JsonValueKind.String && origin.GetString() == "runtime");
                if (Problem(adapter) is { } problem)
                {
                    throw new FormatException(problem);
                }
                if (result.Any(a => a.Name == adapter.Name))
                {
                    throw new FormatException($"adapter '{adapter.Name}' is listed twice");
                }
                result.Add(adapter);
            }
        }
        catch (JsonException e)
        {
            throw new FormatException($"not valid JSON: {e.Message}", e);
        }
        return result;
    }

    public static string Serialize(IEnumerable<LoraAdapter> adapters)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteStartArray("adapters");
            foreach (var adapter in adapters)
            {
                w.WriteStartObject();
                w.WriteString("name", adapter.Name);
                w.WriteString("base_model", adapter.BaseModel);
                w.WriteString("source", adapter.Source);
                if (adapter.Runtime)
                {
                    w.WriteString("origin", "runtime");
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }

    /// <summary>Why an adapter cannot be in the catalogue, or null.</summary>
    public static string? Problem(LoraAdapter adapter)
    {
        if (string.IsNullOrWhiteSpace(adapter.Name) || string.IsNullOrWhiteSpace(adapter.BaseModel) || string.IsNullOrWhiteSpace(adapter.Source))
        {
            return "every adapter needs a non-empty \"name\", \"base_model\" and \"source\"";
        }
        if (adapter.Name.Length > 256 || adapter.Name.Any(char.IsControl))
        {
            return $"adapter name '{adapter.Name}' must be at most 256 characters without control characters";
        }
        return null;
    }

    /// <summary>Which field <see cref="Problem"/> is about: <c>name</c>, <c>base_model</c> or <c>source</c> (an OpenAI error's <c>param</c>).</summary>
    public static string ProblemField(LoraAdapter adapter) =>
        string.IsNullOrWhiteSpace(adapter.Name) || adapter.Name.Length > 256 || adapter.Name.Any(char.IsControl) ? "name"
        : string.IsNullOrWhiteSpace(adapter.BaseModel) ? "base_model"
        : "source";

    /// <summary>A JSON string's text, trimmed.</summary>
    /// <exception cref="FormatException">The string escapes half a UTF-16 surrogate pair (<c>"\ud800"</c>): no text.</exception>
    public static string TextOf(JsonElement value, string field)
    {
        try
        {
            return value.GetString()!.Trim();
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json refuses a lone surrogate escape only when the string is read, after the document parsed.
            throw new FormatException($"'{field}' is not valid text: {e.Message}", e);
        }
    }

    private static string Text(JsonElement entry, string name) =>
        entry.ValueKind == JsonValueKind.Object && entry.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? TextOf(value, name) : "";
}
