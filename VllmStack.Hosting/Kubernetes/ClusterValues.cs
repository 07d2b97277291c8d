using System.Globalization;
using System.Text.RegularExpressions;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// The one place where the values of Aspire's model become values inside the cluster. In publish mode Aspire hands out
/// manifest expressions; here they turn into what a pod sees:
/// <list type="bullet">
/// <item><c>{cacheserver.bindings.http.url}</c> → <c>http://cacheserver:8080</c> (the Service's DNS name and port;
/// <c>host</c>, <c>port</c>, <c>targetPort</c>, <c>hostAndPort</c>, <c>scheme</c> and <c>tlsEnabled</c> likewise);</item>
/// <item><c>{model.value}</c> → <c>$(PARAMETER_MODEL)</c>, which Kubernetes expands from the ConfigMap or Secret;</item>
/// <item><c>{cache.connectionString}</c> → the resource's own connection string, translated the same way
/// (<c>cache:6379,password=$(PARAMETER_CACHE_PASSWORD)</c>); a connection-string parameter is a parameter.</item>
/// </list>
/// Literal text keeps its meaning: a <c>$(</c> in it is escaped as <c>$$(</c>, so Kubernetes expands nothing in it.
/// </summary>
internal sealed partial class ClusterValues
{
    private readonly Dictionary<string, object> _named = new(StringComparer.Ordinal);
    private readonly HashSet<object> _seen = new(ReferenceEqualityComparer.Instance);
    private readonly SortedDictionary<string, ParameterResource> _referenced = new(StringComparer.Ordinal);

    /// <summary>Knows every resource of <paramref name="model"/> by name, and what they reference.</summary>
    public ClusterValues(DistributedApplicationModel model)
    {
        foreach (var resource in model.Resources)
        {
            Discover(resource);
        }
    }

    /// <summary>The parameters the translated values refer to, by name: they need a ConfigMap key or a Secret key.</summary>
    public IReadOnlyCollection<ParameterResource> ReferencedParameters => _referenced.Values;

    /// <summary>
    /// The in-cluster form of a value as Aspire resolved it in publish mode: <paramref name="unprocessed"/> is what the
    /// model holds (a string, a parameter, an endpoint or connection-string reference, an expression) and
    /// <paramref name="resolved"/> its manifest expression.
    /// </summary>
    /// <exception cref="KubernetesPublishException">The value refers to something the cluster has no form for.</exception>
    public string Translate(object unprocessed, string resolved)
    {
        if (unprocessed is string)
        {
            return EscapeLiteral(resolved);
        }
        Discover(unprocessed);
        return TranslateExpression(resolved);
    }

    /// <summary>The in-cluster form of a parameter, an endpoint or an expression of the model.</summary>
    public string Translate(IManifestExpressionProvider value) => Translate(value, value.ValueExpression);

    private static string EscapeLiteral(string text) => text.Replace("$(", "$$(", StringComparison.Ordinal);

    private string TranslateExpression(string expression)
    {
        var parts = ExpressionPattern().Split(expression);
        // Split keeps the captured groups: text, name, path, text, name, path, …
        var text = new System.Text.StringBuilder();
        for (var i = 0; i < parts.Length; i += 3)
        {
            text.Append(EscapeLiteral(parts[i]));
            if (i + 2 < parts.Length)
            {
                text.Append(Resolve(parts[i + 1], parts[i + 2], expression));
            }
        }
        return text.ToString();
    }

    private string Resolve(string name, string path, string expression)
    {
        if (!_named.TryGetValue(name, out var target))
        {
            throw Unknown(expression, $"the model has nothing named '{name}'");
        }
        switch (target, path)
        {
            case (ParameterResource parameter, "value" or "connectionString"):
                _referenced[parameter.Name] = parameter;
                return ParameterVariables.Reference(parameter);
            case (ReferenceExpression { IsConditional: true, Condition: IManifestExpressionProvider test } conditional, "connectionString"):
                var condition = TranslateExpression(test.ValueExpression);
                var branch = string.Equals(condition, conditional.MatchValue, StringComparison.OrdinalIgnoreCase) ? conditional.WhenTrue : conditional.WhenFalse;
                return TranslateExpression(branch!.ValueExpression);
            case (IResourceWithConnectionString resource, "connectionString"):
                return TranslateExpression(resource.ConnectionStringExpression.ValueExpression);
            case (IResource resource, _) when path.StartsWith("bindings.", StringComparison.Ordinal) && path.Split('.') is [_, var endpoint, var property]:
                return Endpoint(resource, endpoint, property) ?? throw Unknown(expression, $"'{name}' has no endpoint '{endpoint}' with a '{property}'");
            default:
                throw Unknown(expression, $"'{path}' of '{name}' has no in-cluster form");
        }
    }

    /// <summary>An endpoint as other pods reach it: the Service named after the resource, on the container's port (no TLS inside the cluster).</summary>
    private static string? Endpoint(IResource resource, string endpoint, string property)
    {
        var annotation = resource.Annotations.OfType<EndpointAnnotation>().FirstOrDefault(e => e.Name == endpoint);
        if (annotation is null)
        {
            return null;
        }
        var host = resource.Name;
        var port = KubernetesLabels.ContainerPort(resource, endpoint).ToString(CultureInfo.InvariantCulture);
        return property switch
        {
            "url" => $"{annotation.UriScheme}://{host}:{port}",
            "host" or "IPV4Host" => host,
            "port" or "targetPort" => port,
            "hostAndPort" => $"{host}:{port}",
            "scheme" => annotation.UriScheme,
            "tlsEnabled" => bool.FalseString,
            _ => null,
        };
    }

    private static KubernetesPublishException Unknown(string expression, string reason) =>
        new($"Cannot publish the value '{expression}' to Kubernetes: {reason}.");

    /// <summary>Learns the names an expression may use: resources, parameters, conditional expressions, and what they reference in turn.</summary>
    private void Discover(object? value)
    {
        if (value is null || !_seen.Add(value))
        {
            return;
        }
        switch (value)
        {
            case IResourceBuilder<IResource> builder:
                Discover(builder.Resource);
                return;
            case ReferenceExpression { IsConditional: true } conditional:
                // A conditional expression appears as {NAME.connectionString}; its name is not public otherwise.
                if (ExpressionPattern().Match(conditional.ValueExpression) is { Success: true } reference)
                {
                    _named[reference.Groups[1].Value] = conditional;
                }
                Discover(conditional.Condition);
                Discover(conditional.WhenTrue);
                Discover(conditional.WhenFalse);
                return;
            case IResource resource:
                _named.TryAdd(resource.Name, resource);
                if (resource is IResourceWithConnectionString withConnectionString and not ParameterResource)
                {
                    Discover(withConnectionString.ConnectionStringExpression);
                }
                break;
        }
        if (value is IValueWithReferences withReferences)
        {
            foreach (var reference in withReferences.References)
            {
                Discover(reference);
            }
        }
    }

    // {name.path}: a resource, parameter or conditional expression's name, then value / connectionString / bindings.EP.PROP.
    [GeneratedRegex(@"\{([A-Za-z0-9][A-Za-z0-9-]*)\.(value|connectionString|bindings\.[^.{}]+\.[A-Za-z0-9]+)\}")]
    private static partial Regex ExpressionPattern();
}
