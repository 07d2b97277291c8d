using System.Text.RegularExpressions;
using Aspire.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// How a parameter appears in published manifests: <c>$(PARAMETER_MODEL)</c>, which Kubernetes expands in a container's
/// arguments and <c>env</c> values from a variable the publisher defines first (from the <c>parameters</c> ConfigMap or
/// the Secret holding the value).
/// </summary>
internal static partial class ParameterVariables
{
    /// <summary><c>hf-token</c> → <c>PARAMETER_HF_TOKEN</c>.</summary>
    public static string VariableName(ParameterResource parameter) => "PARAMETER_" + parameter.Name.ToUpperInvariant().Replace('-', '_');

    /// <summary><c>$(PARAMETER_HF_TOKEN)</c>: the reference Kubernetes expands.</summary>
    public static string Reference(ParameterResource parameter) => $"$({VariableName(parameter)})";

    /// <summary>The parameter variable names referenced in <paramref name="text"/>, in order of appearance.</summary>
    public static IEnumerable<string> VariablesIn(string text) => ReferencePattern().Matches(text).Select(m => m.Groups[1].Value);

    [GeneratedRegex(@"(?<!\$)\$\((PARAMETER_[A-Z0-9_]+)\)")]
    private static partial Regex ReferencePattern();
}
