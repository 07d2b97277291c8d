using Aspire.Hosting.ApplicationModel;
using static VllmStack.Hosting.Kubernetes.Manifest;

namespace VllmStack.Hosting.Kubernetes;

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

    private PodEnvironment(List<object> env, SortedDictionary<string, string> config)
    {
        Env = env;
        ConfigData = config;
    }

    /// <summary>The container's <c>env</c> list.</summary>
    public List<object> Env { get; }

    /// <summary>What goes into the resource's ConfigMap (read with <c>envFrom</c>).</summary>
    public SortedDictionary<string, string> ConfigData { get; }

    /// <summary>
    /// Splits translated <paramref name="variables"/> between the ConfigMap and <c>env</c>, and defines first every
    /// parameter variable that they or <paramref name="args"/> refer to.
    /// </summary>
    /// <exception cref="InvalidOperationException">A value refers to a variable of no parameter in <paramref name="parameters"/>.</exception>
    public static PodEnvironment Build(IReadOnlyDictionary<string, string> variables, IEnumerable<string> args, IReadOnlyCollection<ParameterResource> parameters)
    {
        var byVariable = parameters.ToDictionary(ParameterVariables.VariableName, StringComparer.Ordinal);
        var referenced = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var text in variables.Values.Concat(args))
        {
            foreach (var name in ParameterVariables.VariablesIn(text))
            {
                referenced.Add(byVariable.ContainsKey(name) ? name : throw new InvalidOperationException($"'{text}' refers to {name}, which is no parameter of the model."));
            }
        }
        var env = new List<object>();
        if (variables.Values.Any(v => v.Contains($"$({PodNameVariable})", StringComparison.Ordinal)))
        {
            env.Add(Map(("name", PodNameVariable), ("valueFrom", Map(("fieldRef", Map(("fieldPath", "metadata.name")))))));
        }
        foreach (var name in referenced)
        {
            var parameter = byVariable[name];
            var source = parameter.Secret
                ? ("secretKeyRef", Map(("name", SecretName), ("key", parameter.Name)))
                : ("configMapKeyRef", Map(("name", ParametersConfigMap), ("key", parameter.Name)));
            env.Add(Map(("name", name), ("valueFrom", Map(source))));
        }
        var config = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in variables.OrderBy(v => v.Key, StringComparer.Ordinal))
        {
            // Kubernetes expands $(…) in env values only (and turns $$ back into $); a ConfigMap value is taken as it is.
            if (value.Contains("$(", StringComparison.Ordinal))
            {
                env.Add(Map(("name", key), ("value", value)));
            }
            else
            {
                config[key] = value;
            }
        }
        return new PodEnvironment(env, config);
    }
}
