namespace VllmStack.Tests.Publishing;

/// <summary>
/// The schema validator is only worth trusting if it both passes good manifests and fails bad ones, so each kind of
/// mistake below must produce an error that names the object it is in.
/// </summary>
public sealed class KubernetesSchemaValidatorTests : IDisposable
{
    // One bound for the whole test, the first npm install included (the validator bounds each process itself too).
    private readonly CancellationTokenSource _deadline = new(TimeSpan.FromMinutes(7));

    private CancellationToken Deadline() => _deadline.Token;

    public void Dispose() => _deadline.Dispose();

    private const string Deployment = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: router
          labels: {app: router}
        spec:
          replicas: 2
          selector:
            matchLabels: {app: router}
          template:
            metadata:
              labels: {app: router}
            spec:
              containers:
                - name: router
                  image: vllmstack/router:1.0
                  ports: [{name: http, containerPort: 8080}]
                  env: [{name: ROUTER_MODE, value: "on"}]
                  resources: {limits: {cpu: 500m, memory: 256Mi}}
        """;

    private const string Service = """
        apiVersion: v1
        kind: Service
        metadata:
          name: router
        spec:
          selector: {app: router}
          ports: [{name: http, port: 80, targetPort: http}]
        """;

    private const string ServiceMonitor = """
        apiVersion: monitoring.coreos.com/v1
        kind: ServiceMonitor
        metadata:
          name: router
        spec:
          selector:
            matchLabels: {app: router}
          endpoints: [{port: http, path: /metrics, interval: 15s}]
        """;

    private const string Role = """
        apiVersion: rbac.authorization.k8s.io/v1
        kind: Role
        metadata:
          name: autoscaler
        rules:
          - apiGroups: [apps]
            resources: [deployments/scale]
            verbs: [get, patch]
        """;

    private static string Stream(params string[] documents) => string.Join("\n---\n", documents) + "\n";

    [Fact]
    public async Task ValidManifestsPass()
    {
        // A leading and a trailing separator, as kustomize output may have: empty documents are not objects.
        var result = await KubernetesSchemaValidator.ValidateAsync("---\n" + Stream(Deployment, Service, ServiceMonitor, Role) + "---\n", Deadline());

        Assert.True(result.IsValid, result.ToString());
        Assert.Equal(4, result.Objects);
    }

    [Fact]
    public async Task DeploymentWithContainersAsStringFails()
    {
        var broken = Deployment.Replace("""
                  containers:
                    - name: router
            """, """
                  containers: "router"
                  initContainers:
                    - name: router
            """);
        Assert.NotEqual(Deployment, broken); // the edit above must have applied

        var result = await KubernetesSchemaValidator.ValidateAsync(Stream(broken, Service), Deadline());

        Assert.Equal(2, result.Objects);
        var error = Assert.Single(result.Errors);
        Assert.Equal(("apps/v1", "Deployment", "router"), (error.ApiVersion, error.Kind, error.Name));
        Assert.Contains("/spec/template/spec/containers", error.Message);
    }

    [Fact]
    public async Task ServiceWithNonNumericPortFails()
    {
        var result = await KubernetesSchemaValidator.ValidateAsync(
            Stream(Deployment, Service.Replace("port: 80", "port: abc")), Deadline());

        var error = Assert.Single(result.Errors);
        Assert.Equal(("v1", "Service", "router"), (error.ApiVersion, error.Kind, error.Name));
        Assert.Contains("/spec/ports/0/port", error.Message);
    }

    [Fact]
    public async Task ServiceMonitorWithWrongFieldTypeFails()
    {
        // endpoints is a list of endpoints; a single mapping is a type error.
        var result = await KubernetesSchemaValidator.ValidateAsync(
            Stream(ServiceMonitor.Replace("endpoints: [{port: http, path: /metrics, interval: 15s}]", "endpoints: {port: http}")),
            Deadline());

        var error = Assert.Single(result.Errors);
        Assert.Equal(("monitoring.coreos.com/v1", "ServiceMonitor", "router"), (error.ApiVersion, error.Kind, error.Name));
        Assert.Contains("/spec/endpoints", error.Message);
    }

    [Fact]
    public async Task YamlOneOneBooleanWhereAStringBelongsFails()
    {
        // The API server reads YAML 1.1, where an unquoted `on` is true: env values must be strings.
        var result = await KubernetesSchemaValidator.ValidateAsync(Stream(Deployment.Replace("\"on\"", "on")), Deadline());

        var error = Assert.Single(result.Errors);
        Assert.Equal("Deployment", error.Kind);
        Assert.Contains("/spec/template/spec/containers/0/env/0/value", error.Message);
    }

    [Theory]
    [InlineData("example.com/v1", "Widget")]
    [InlineData("apps/v1", "Gadget")]
    [InlineData("apps/v1", "DeploymentSpec")] // a nested type of the models package, not a resource
    [InlineData("v1", "Deployment")] // a real kind under the wrong apiVersion
    public async Task UnknownApiVersionOrKindFails(string apiVersion, string kind)
    {
        var unknown = $"apiVersion: {apiVersion}\nkind: {kind}\nmetadata: {{name: thing}}\n";

        var result = await KubernetesSchemaValidator.ValidateAsync(Stream(Role, unknown), Deadline());

        Assert.Equal(2, result.Objects);
        var error = Assert.Single(result.Errors);
        Assert.Equal((apiVersion, kind, "thing"), (error.ApiVersion, error.Kind, error.Name));
        Assert.Contains("unknown apiVersion/kind", error.Message);
    }

    [Fact]
    public async Task MalformedYamlThrows()
    {
        var e = await Assert.ThrowsAsync<InvalidOperationException>(
            () => KubernetesSchemaValidator.ValidateAsync("kind: [unclosed\n", Deadline()));
        Assert.Contains("YAML parse error", e.Message);
    }
}
