using System.Text.RegularExpressions;

namespace VllmStack.Hosting.ApplicationModel;

/// <summary>
/// How a parameter appears in published manifests: <c>$(PARAMETER_MODEL)</c>, which Kubernetes expands in a container's
/// arguments and environment from a variable the publisher defines first (from the ConfigMap or Secret holding the value).
/// </summary>
public static partial class ParameterReference
{
    public static string VariableName(ParameterResource parameter) => "PARAMETER_" + parameter.Name.ToUpperInvariant().Replace('-', '_');

    public static string Of(ParameterResource parameter) => $"$({VariableName(parameter)})";

    /// <summary>The variable names referenced in <paramref name="text"/>.</summary>
    public static IEnumerable<string> VariablesIn(string text) => Reference().Matches(text).Select(m => m.Groups[1].Value);

    [GeneratedRegex(@"\$\((PARAMETER_[A-Z0-9_]+)\)")]
    private static partial Regex Reference();
}
