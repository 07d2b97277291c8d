using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Trace;
using VllmStack.ServiceDefaults;
using VllmStack.ServiceDefaults.Telemetry;

namespace VllmStack.Tests.ServiceDefaults;

/// <summary>The OTEL_* variables Aspire sets, as the services read them.</summary>
public sealed class OtlpSettingsTests
{
    private const string Endpoint = "http://127.0.0.1:4318";

    private static IConfiguration Config(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build();

    [Fact]
    public void Nothing_is_exported_or_listened_to_without_an_endpoint()
    {
        Assert.Null(OtlpSettings.From(Config()));
        using var host = HostWith();
        Assert.Null(host.Services.GetService<TracerProvider>());
    }

    [Fact]
    public void Http_protobuf_is_the_default_and_grpc_is_taken_when_asked_for()
    {
        Assert.Equal(OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf, OtlpSettings.From(Config(("OTEL_EXPORTER_OTLP_ENDPOINT", Endpoint + "/")))!.Protocol);
        Assert.Equal(OpenTelemetry.Exporter.OtlpExportProtocol.Grpc, OtlpSettings.From(Config(("OTEL_EXPORTER_OTLP_ENDPOINT", Endpoint), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")))!.Protocol);
    }

    [Fact]
    public void Service_name_comes_from_the_variable_then_the_attributes_then_the_application()
    {
        Assert.Equal("router", Resource(("OTEL_SERVICE_NAME", "router"), ("OTEL_RESOURCE_ATTRIBUTES", "service.name=other"))["service.name"]);
        var replica = Resource(("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=engine-1-abc,service.name=engine-1"));
        Assert.Equal("engine-1", replica["service.name"]);
        Assert.Equal("engine-1-abc", replica["service.instance.id"]);

        var fallback = Resource();
        Assert.Equal("app", fallback["service.name"]);
        Assert.True(Guid.TryParse((string)fallback["service.instance.id"], out _), "a generated service.instance.id");
    }

    [Fact]
    public void Unsupported_settings_fail_at_start_with_the_reason()
    {
        Assert.Contains("OTEL_EXPORTER_OTLP_PROTOCOL", Assert.Throws<InvalidOperationException>(() => OtlpSettings.From(
            Config(("OTEL_EXPORTER_OTLP_ENDPOINT", Endpoint), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")))).Message);
        Assert.Contains("not an absolute URL", Assert.Throws<InvalidOperationException>(() => OtlpSettings.From(
            Config(("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost")))).Message);
    }

    private static Dictionary<string, object> Resource(params (string Key, string Value)[] values)
    {
        using var host = HostWith([("OTEL_EXPORTER_OTLP_ENDPOINT", Endpoint), .. values]);
        return host.Services.GetRequiredService<TracerProvider>().GetResource().Attributes.ToDictionary(a => a.Key, a => a.Value);
    }

    private static IHost HostWith(params (string Key, string Value)[] values)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { ApplicationName = "app", DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)));
        builder.AddServiceDefaults();
        return builder.Build();
    }
}
