using System.Globalization;
using System.Text;
using Aspire.Hosting;
using Microsoft.Extensions.Configuration;
using VllmStack.Hosting.Kubernetes;
using VllmStack.Hosting.Vllm;

namespace VllmStack.Hosting.Models;

/// <summary>The defaults a model takes for what its entry leaves unset (the stack's parameters).</summary>
public sealed record ModelDefaults(string Model, int Replicas, string SimulatorPreset, int Gpus, int MinReplicas, int MaxReplicas);

/// <summary>
/// The stack's models from configuration: the <c>Models</c> section (a list of <see cref="ModelOptions"/>), or without
/// that section one model from the defaults, in the engine group <c>engine</c>. Every unset value is filled from the
/// defaults, and the list is checked before anything starts.
/// </summary>
public static class ModelList
{
    public const string SectionName = "Models";

    /// <summary>The engine group of the one model a stack without a <c>Models</c> section serves.</summary>
    public const string DefaultGroup = "engine";

    /// <summary>Longest derived group name, so that replica names (<c>-NN</c>) and published object names stay within 63.</summary>
    private const int MaxDerivedGroupLength = 40;

    /// <summary>Binds, completes and validates the model list.</summary>
    /// <exception cref="DistributedApplicationException">The list is empty or invalid; the message names every problem.</exception>
    public static IReadOnlyList<ModelOptions> Load(IConfiguration configuration, ModelDefaults defaults)
    {
        var section = configuration.GetSection(SectionName);
        List<ModelOptions> models;
        if (!section.Exists())
        {
            models = [new ModelOptions { Name = defaults.Model, Group = DefaultGroup }];
        }
        else
        {
            // A section that holds a value and no entries (e.g. --Models=) is an empty list, not "use the default".
            models = section.Get<List<ModelOptions>>() ?? [];
        }
        foreach (var model in models)
        {
            model.Group ??= DerivedGroup(model.Name);
            model.Replicas ??= defaults.Replicas;
            model.SimulatorPreset ??= defaults.SimulatorPreset;
            model.Gpus ??= defaults.Gpus;
            model.Autoscaling.MinReplicas ??= defaults.MinReplicas;
            model.Autoscaling.MaxReplicas ??= defaults.MaxReplicas;
        }
        var errors = Validate(models).ToList();
        if (errors.Count > 0)
        {
            throw new DistributedApplicationException($"Configuration '{SectionName}' is invalid: {string.Join("; ", errors)}.");
        }
        return models;
    }

    /// <summary>The problems of a completed list (see <see cref="Load"/>), one message each.</summary>
    public static IEnumerable<string> Validate(IReadOnlyList<ModelOptions> models)
    {
        if (models.Count == 0)
        {
            yield return "the list is empty; declare at least one model, or leave the section out for the default one";
            yield break;
        }
        foreach (var name in models.Where(m => m.Name.Length > 0).GroupBy(m => m.Name, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            yield return $"model '{name.Key}' is declared {name.Count()} times";
        }
        foreach (var group in models.GroupBy(m => m.Group, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            yield return $"engine group '{group.Key}' is used by {group.Count()} models ({string.Join(", ", group.Select(m => m.Name))})";
        }
        var adapterNames = models.SelectMany(m => m.Adapters).Select(a => a.Name).Where(n => n.Length > 0);
        foreach (var clash in adapterNames.GroupBy(n => n, StringComparer.Ordinal).Where(g => g.Count() > 1))
        {
            yield return $"adapter '{clash.Key}' is declared {clash.Count()} times (adapter names are model names to clients)";
        }
        foreach (var clash in adapterNames.Intersect(models.Select(m => m.Name), StringComparer.Ordinal))
        {
            yield return $"adapter '{clash}' has the name of a model";
        }
        for (var i = 0; i < models.Count; i++)
        {
            foreach (var error in Validate(models[i]))
            {
                yield return $"{SectionName}:{i.ToString(CultureInfo.InvariantCulture)} ({(models[i].Name.Length > 0 ? models[i].Name : "no name")}): {error}";
            }
        }
    }

    private static IEnumerable<string> Validate(ModelOptions model)
    {
        if (string.IsNullOrWhiteSpace(model.Name))
        {
            yield return "Name is required";
        }
        if (model.Group is not { } group || !KubernetesLabels.IsObjectName(group) || group.Length > 60)
        {
            yield return $"Group '{model.Group}' must be lower-case letters, digits and '-', at most 60 characters";
        }
        var (min, max) = (model.Autoscaling.MinReplicas ?? 0, model.Autoscaling.MaxReplicas ?? 0);
        if (min < 0 || max < 1 || min > max)
        {
            yield return $"Autoscaling bounds {min}..{max} must satisfy 0 <= MinReplicas <= MaxReplicas and MaxReplicas >= 1";
        }
        else if (model.Replicas is not { } replicas || replicas < min || replicas > max)
        {
            yield return $"Replicas {model.Replicas} is outside the autoscaling bounds {min}..{max}";
        }
        if (model.Gpus is < 0)
        {
            yield return $"Gpus {model.Gpus} must not be negative";
        }
        if (model.MaxModelLen is < 1)
        {
            yield return $"MaxModelLen {model.MaxModelLen} must be positive";
        }
        if (model.MaxLoras is < 1)
        {
            yield return $"MaxLoras {model.MaxLoras} must be positive";
        }
        if (model.MaxLoras is not null && model.Adapters.Count == 0)
        {
            yield return "MaxLoras is set but the model has no Adapters (LoRA would be off)";
        }
        foreach (var adapter in model.Adapters)
        {
            if (!VllmBuilderExtensions.IsAdapterName(adapter.Name) || string.IsNullOrWhiteSpace(adapter.Source))
            {
                yield return $"adapter '{adapter.Name}' needs a Name (without '=' or whitespace) and a Source";
            }
            if (adapter.BaseModel is { } baseModel && baseModel != model.Name)
            {
                yield return $"adapter '{adapter.Name}' has BaseModel '{baseModel}' but is declared under model '{model.Name}'; "
                    + "declare it under its base model, whose engines serve it";
            }
        }
    }

    /// <summary><c>Qwen/Qwen2.5-7B-Instruct</c> → <c>engine-qwen2-5-7b-instruct</c>: the last path segment, lower-case, other characters as '-'.</summary>
    public static string DerivedGroup(string model)
    {
        var last = model.TrimEnd('/').Split('/')[^1];
        var slug = new StringBuilder();
        foreach (var c in last.ToLowerInvariant())
        {
            slug.Append(c is (>= 'a' and <= 'z') or (>= '0' and <= '9') ? c : '-');
        }
        var text = System.Text.RegularExpressions.Regex.Replace(slug.ToString(), "-+", "-").Trim('-');
        text = text.Length > MaxDerivedGroupLength ? text[..MaxDerivedGroupLength].TrimEnd('-') : text;
        return text.Length == 0 ? DefaultGroup : $"{DefaultGroup}-{text}";
    }
}
