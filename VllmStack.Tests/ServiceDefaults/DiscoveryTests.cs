using Microsoft.Extensions.Configuration;
using VllmStack.ServiceDefaults.Discovery;

namespace VllmStack.Tests.ServiceDefaults;

public sealed class DiscoveryTests
{
    // Environment variables services__router__http__0 arrive in configuration as services:router:http:0.
    private static readonly IConfiguration Config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["services:router:http:0"] = "http://127.0.0.1:8080",
        ["services:router:https:0"] = "https://127.0.0.1:8443",
        ["services:engine:http:1"] = "http://127.0.0.1:8101",
        ["services:engine:http:0"] = "http://127.0.0.1:8100",
        ["services:broken:http:0"] = "not a url",
        ["ConnectionStrings:cache"] = "127.0.0.1:6379,password=secret",
    }).Build();

    [Fact]
    public void Endpoints_come_in_index_order_and_the_first_scheme_with_any_wins()
    {
        Assert.Equal([new Uri("http://127.0.0.1:8100"), new Uri("http://127.0.0.1:8101")], ServiceEndpoints.Resolve(Config, "engine", "http"));
        Assert.Equal([new Uri("https://127.0.0.1:8443")], ServiceEndpoints.Resolve(Config, "router", "https", "http"));
        Assert.Equal([new Uri("http://127.0.0.1:8100"), new Uri("http://127.0.0.1:8101")], ServiceEndpoints.Resolve(Config, "engine", "https", "http"));
        Assert.Empty(ServiceEndpoints.Resolve(Config, "nobody", "http"));
        Assert.Equal(2, ServiceEndpoints.Resolve(Config, "router").Count);
    }

    [Fact]
    public void A_bad_url_is_reported_with_its_configuration_key()
    {
        var error = Assert.Throws<InvalidOperationException>(() => ServiceEndpoints.Resolve(Config, "broken", "http"));
        Assert.Contains("services:broken:http:0", error.Message);
    }

    [Fact]
    public void Connection_strings_follow_the_aspire_convention()
    {
        Assert.Equal("127.0.0.1:6379,password=secret", ConnectionStrings.GetRequired(Config, "cache"));
        Assert.Null(ConnectionStrings.Get(Config, "missing"));
        Assert.Contains("ConnectionStrings__missing", Assert.Throws<InvalidOperationException>(() => ConnectionStrings.GetRequired(Config, "missing")).Message);
    }

    [Fact]
    public void Logical_hosts_rotate_over_replicas_and_other_hosts_pass_through()
    {
        var handler = new ServiceDiscoveryHandler(Config);
        var first = handler.Rewrite(new Uri("http://engine/v1/models?x=1"))!;
        var second = handler.Rewrite(new Uri("http://engine/v1/models?x=1"))!;
        Assert.Equal(new[] { 8100, 8101 }.Order(), new[] { first.Port, second.Port }.Order());
        Assert.Equal("/v1/models", first.AbsolutePath);
        Assert.Equal("?x=1", first.Query);
        Assert.Equal(new Uri("https://127.0.0.1:8443/a"), handler.Rewrite(new Uri("https+http://router/a")));
        Assert.Null(handler.Rewrite(new Uri("http://example.com/")));
        Assert.Null(handler.Rewrite(new Uri("http://localhost:1234/")));
        Assert.Null(handler.Rewrite(new Uri("http://unknown-service/")));
    }

    [Fact]
    public async Task HttpClients_from_the_factory_reach_a_service_by_its_name()
    {
        await using var sim = await Infrastructure.EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["services:engine:http:0"] = sim.BaseUrl.ToString() });
        VllmStack.ServiceDefaults.ServiceDefaultsExtensions.AddServiceDefaults(builder);
        Microsoft.Extensions.DependencyInjection.HttpClientFactoryServiceCollectionExtensions.AddHttpClient(builder.Services);
        using var host = builder.Build();
        var factory = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<IHttpClientFactory>(host.Services);

        var models = await factory.CreateClient().GetStringAsync("http://engine/v1/models");
        Assert.Contains(Infrastructure.EngineSimProcess.DefaultModel, models);
    }
}

public sealed class OtlpSettingsTests
{
    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [Fact]
    public void Nothing_is_exported_without_an_endpoint() =>
        Assert.Null(VllmStack.ServiceDefaults.Telemetry.OtlpSettings.From(Config(), "app"));

    [Fact]
    public void Service_name_comes_from_the_variable_then_the_attributes_then_the_application()
    {
        const string endpoint = "http://127.0.0.1:4318";
        Assert.Equal("router", VllmStack.ServiceDefaults.Telemetry.OtlpSettings.From(
            Config(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint), ("OTEL_SERVICE_NAME", "router"), ("OTEL_RESOURCE_ATTRIBUTES", "service.name=other")), "app")!.ServiceName);
        Assert.Equal("engine-1", VllmStack.ServiceDefaults.Telemetry.OtlpSettings.From(
            Config(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint), ("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=x, service.name=engine-1")), "app")!.ServiceName);
        var fallback = VllmStack.ServiceDefaults.Telemetry.OtlpSettings.From(Config(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint + "/")), "app")!;
        Assert.Equal("app", fallback.ServiceName);
        Assert.Equal(OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf, fallback.Protocol);
    }

    [Fact]
    public void Unsupported_settings_fail_at_start_with_the_reason()
    {
        Assert.Contains("OTEL_EXPORTER_OTLP_PROTOCOL", Assert.Throws<InvalidOperationException>(() => VllmStack.ServiceDefaults.Telemetry.OtlpSettings.From(
            Config(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")), "app")).Message);
        Assert.Contains("not an absolute URL", Assert.Throws<InvalidOperationException>(() => VllmStack.ServiceDefaults.Telemetry.OtlpSettings.From(
            Config(("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost")), "app")).Message);
    }
}
