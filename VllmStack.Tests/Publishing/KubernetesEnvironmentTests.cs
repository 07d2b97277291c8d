using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.Configuration;
using VllmStack.Hosting.Kubernetes;

namespace VllmStack.Tests.Publishing;

/// <summary>
/// The Kubernetes environment in the model (only when publishing), its options (code, then configuration), and the one
/// translation of Aspire's manifest expressions into in-cluster values — on models built here, without running anything.
/// </summary>
public sealed class KubernetesEnvironmentTests
{
    private static IDistributedApplicationBuilder Builder(params string[] args) =>
        DistributedApplication.CreateBuilder(new DistributedApplicationOptions { Args = args, DisableDashboard = true });

    [Fact]
    public void In_run_mode_the_environment_is_not_a_resource_of_the_model()
    {
        var builder = Builder();
        var environment = builder.AddKubernetesEnvironment("kubernetes").WithProperties(k8s => k8s.Options.Namespace = "llm");
        Assert.Equal("llm", environment.Resource.Options.Namespace);
        Assert.DoesNotContain(builder.Resources, r => r is KubernetesEnvironmentResource);
    }

    [Fact]
    public void In_publish_mode_the_environment_is_in_the_model_but_not_in_aspires_manifest()
    {
        var builder = Builder("--operation", "publish");
        builder.AddKubernetesEnvironment("kubernetes");
        var environment = Assert.Single(builder.Resources.OfType<KubernetesEnvironmentResource>());
        Assert.True(environment.IsExcludedFromPublish());
    }

    [Fact]
    public void Configuration_overrides_what_code_set_and_unset_settings_keep_it()
    {
        var options = new KubernetesPublishOptions { Namespace = "from-code", ImageTag = "code-tag" };
        options.Apply(Configuration(("Kubernetes:Namespace", "from-config"), ("Kubernetes:ServiceMonitors", "true"), ("Kubernetes:OtlpEndpoint", "http://collector:4318/")));
        Assert.Equal("from-config", options.Namespace);
        Assert.Equal("code-tag", options.ImageTag);
        Assert.True(options.ServiceMonitors);
        Assert.Equal(new Uri("http://collector:4318/"), options.OtlpEndpoint);
    }

    [Theory]
    [InlineData("Kubernetes:Namespace", "a-very-long-namespace-name-that-goes-past-sixty-three-characters-x", "must be a DNS label")]
    [InlineData("Kubernetes:Namespace", "llm\n", "must be a DNS label")]
    [InlineData("Kubernetes:StorageClass", "Fast_SSD", "must be a DNS subdomain")]
    [InlineData("Kubernetes:OtlpEndpoint", "collector:4318", "must be an absolute http or https URL")]
    [InlineData("Kubernetes:ImageTag", "", "is not a valid image tag")]
    [InlineData("Kubernetes:Registry", "ghcr.io/Acme", "must be a registry host")]
    public void Values_kubernetes_or_image_references_would_refuse_are_refused_with_the_rule(string key, string value, string rule)
    {
        var e = Assert.Throws<KubernetesPublishException>(() => new KubernetesPublishOptions().Apply(Configuration((key, value))));
        Assert.Contains(key, e.Message);
        Assert.Contains(rule, e.Message);
    }

    [Fact]
    public void Manifest_expressions_become_service_addresses_and_parameter_references()
    {
        var builder = Builder("--operation", "publish");
        var model = builder.AddParameter("model", "some/model");
        var redis = builder.AddRedis("cache");
        var api = builder.AddContainer("api", "example/api").WithHttpEndpoint(targetPort: 5000, name: "http");
        var values = new ClusterValues(new DistributedApplicationModel(builder.Resources));

        Assert.Equal("$(PARAMETER_MODEL)", values.Translate(model.Resource));
        Assert.Equal("cache:6379,password=$(PARAMETER_CACHE_PASSWORD)", values.Translate(redis.Resource.ConnectionStringExpression));
        Assert.Equal("http://api:5000", values.Translate(api.GetEndpoint("http")));
        Assert.Equal("api:5000", values.Translate(api.GetEndpoint("http").Property(EndpointProperty.HostAndPort)));
        Assert.Equal("--url=http://api:5000/v1?m=$(PARAMETER_MODEL)",
            values.Translate(ReferenceExpression.Create($"--url={api.GetEndpoint("http")}/v1?m={model.Resource}")));
        // The password parameter is not a resource of the model; it is found through the connection string.
        Assert.Equal(["cache-password", "model"], values.ReferencedParameters.Select(p => p.Name).Order());
    }

    [Fact]
    public void Literal_text_keeps_its_meaning_and_unknown_references_are_refused()
    {
        var builder = Builder("--operation", "publish");
        var values = new ClusterValues(new DistributedApplicationModel(builder.Resources));
        // Kubernetes would expand $(HOME) in args and env values; $$( is its escape.
        Assert.Equal("echo $$(HOME) {not.a.reference}", values.Translate("echo $(HOME) {not.a.reference}", "echo $(HOME) {not.a.reference}"));
        var e = Assert.Throws<KubernetesPublishException>(() => values.Translate(new object(), "{ghost.bindings.http.url}"));
        Assert.Contains("'{ghost.bindings.http.url}'", e.Message);
    }

    private static IConfiguration Configuration(params (string Key, string Value)[] settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value))).Build();
}
