using Microsoft.Extensions.Configuration;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;

namespace VllmStack.ServiceDefaults.Telemetry;

/// <summary>The standard OTEL_* settings, read from configuration (which includes the environment).</summary>
internal sealed class OtlpSettings
{
    private OtlpSettings(string endpoint, OtlpExportProtocol protocol, string serviceName, string? serviceInstanceId)
    {
        Endpoint = endpoint;
        Protocol = protocol;
        ServiceName = serviceName;
        ServiceInstanceId = serviceInstanceId;
    }

    public string Endpoint { get; }

    public OtlpExportProtocol Protocol { get; }

    public string ServiceName { get; }

    /// <summary>
    /// <c>service.instance.id</c> from <c>OTEL_RESOURCE_ATTRIBUTES</c> — Aspire sets it per replica, and its dashboard
    /// matches telemetry to the resource by it —, else null (one is generated per process).
    /// </summary>
    public string? ServiceInstanceId { get; }

    /// <summary>Null when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is not set: then nothing is exported.</summary>
    public static OtlpSettings? From(IConfiguration configuration, string applicationName)
    {
        var endpoint = configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        if (string.IsNullOrWhiteSpace(endpoint))
        {
            return null;
        }
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out _))
        {
            throw new InvalidOperationException($"OTEL_EXPORTER_OTLP_ENDPOINT '{endpoint}' is not an absolute URL.");
        }
        // http/protobuf unless gRPC is asked for explicitly: it needs no HTTP/2 and passes any HTTP proxy.
        var protocol = configuration["OTEL_EXPORTER_OTLP_PROTOCOL"]?.Trim().ToLowerInvariant() switch
        {
            null or "" or "http/protobuf" => OtlpExportProtocol.HttpProtobuf,
            "grpc" => OtlpExportProtocol.Grpc,
            var other => throw new InvalidOperationException($"OTEL_EXPORTER_OTLP_PROTOCOL '{other}' is not supported; use http/protobuf or grpc."),
        };
        var attributes = configuration["OTEL_RESOURCE_ATTRIBUTES"];
        var serviceName = configuration["OTEL_SERVICE_NAME"];
        if (string.IsNullOrWhiteSpace(serviceName))
        {
            serviceName = ResourceAttribute(attributes, "service.name") ?? applicationName;
        }
        return new OtlpSettings(endpoint.TrimEnd('/'), protocol, serviceName, ResourceAttribute(attributes, "service.instance.id"));
    }

    public ResourceBuilder CreateResource() =>
        ResourceBuilder.CreateDefault().AddService(ServiceName, serviceInstanceId: ServiceInstanceId, autoGenerateServiceInstanceId: ServiceInstanceId is null);

    /// <summary>
    /// Sets the endpoint per signal (<c>/v1/traces</c>, …) ourselves, so the result does not depend on
    /// where the exporter happens to read its settings from.
    /// </summary>
    public void Configure(OtlpExporterOptions options, string signalPath)
    {
        options.Protocol = Protocol;
        options.Endpoint = Protocol == OtlpExportProtocol.HttpProtobuf ? new Uri(Endpoint + signalPath) : new Uri(Endpoint);
    }

    /// <summary>One attribute of an <c>OTEL_RESOURCE_ATTRIBUTES</c> list (<c>key=value,…</c>, values percent-encoded).</summary>
    private static string? ResourceAttribute(string? attributes, string key)
    {
        if (string.IsNullOrWhiteSpace(attributes))
        {
            return null;
        }
        foreach (var pair in attributes.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = pair.IndexOf('=');
            if (eq > 0 && pair[..eq].Trim() == key)
            {
                return Uri.UnescapeDataString(pair[(eq + 1)..].Trim());
            }
        }
        return null;
    }
}
