using VllmStack.Hosting.ApplicationModel;
using static VllmStack.Hosting.Publishing.Manifest;

namespace VllmStack.Hosting.Publishing;

/// <summary>
/// A container's environment as published. Plain settings go to the resource's ConfigMap; a value that names a parameter
/// (<c>$(PARAMETER_MODEL)</c>) or the pod (<c>$(POD_NAME)</c>) stays in the container's <c>env</c>, after the variables it
/// names, which come from the <c>parameters</c> ConfigMap, the Secret or the downward API. So a secret is only ever a
/// reference to the Secret, and a parameter's value is set in one place.
/// </summary>
internal sealed class PodEnvironment
{
    public const string ParametersConfigMap = "parameters";
    public const string SecretName = "vllmstack-secrets";
    public const string PodNameVariable = "POD_NAME";

    private PodEnvironment(List<object> env, SortedDictionary<string, string> config, IReadOnlyList<ParameterResource> parameters)
    {
        Env = env;
        ConfigData = config;
        Parameters = parameters;
    }

    /// <summary>The container's <c>env</c> list.</summary>
    public List<object> Env { get; }

    /// <summary>What goes into the resource's ConfigMap (read with <c>envFrom</c>).</summary>
    public SortedDictionary<string, string> ConfigData { get; }

    /// <summary>Parameters the container refers to.</summary>
    public IReadOnlyList<ParameterResource> Parameters { get; }

    public static PodEnvironment Build(IReadOnlyDictionary<string, string> variables, IEnumerable<string> args, IReadOnlyCollection<ParameterResource> parameters)
    {
        var byVariable = parameters.ToDictionary(ParameterReference.VariableName, StringComparer.Ordinal);
        var referenced = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var text in variables.Values.Concat(args))
        {
            foreach (var name in ParameterReference.VariablesIn(text))
            {
                referenced.Add(byVariable.ContainsKey(name) ? name : throw new InvalidOperationException($"'{text}' refers to {name}, which is no parameter of the model."));
            }
        }
        var env = new List<object>();
        if (variables.Values.Any(v => v.Contains($"$({PodNameVariable})", StringComparison.Ordinal)))
        {
            env.Add(Map(("name", PodNameVariable), ("valueFrom", Map(("fieldRef", Map(("fieldPath", "metadata.name")))))));
        }
        var used = new List<ParameterResource>();
        foreach (var name in referenced)
        {
            var parameter = byVariable[name];
            used.Add(parameter);
            var source = parameter.Secret
                ? ("secretKeyRef", Map(("name", SecretName), ("key", parameter.Name)))
                : ("configMapKeyRef", Map(("name", ParametersConfigMap), ("key", parameter.Name)));
            env.Add(Map(("name", name), ("valueFrom", Map(source))));
        }
        var config = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in variables.OrderBy(v => v.Key, StringComparer.Ordinal))
        {
            if (value.Contains("$(", StringComparison.Ordinal))
            {
                env.Add(Map(("name", key), ("value", value)));
            }
            else
            {
                config[key] = value;
            }
        }
        return new PodEnvironment(env, config, used);
    }
}
