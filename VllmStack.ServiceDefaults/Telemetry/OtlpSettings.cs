using Microsoft.Extensions.Configuration;
using OpenTelemetry.Exporter;

namespace VllmStack.ServiceDefaults.Telemetry;

/// <summary>
/// Where to export: <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (the collector's base URL; for http/protobuf the exporter appends
/// <c>/v1/traces</c>, <c>/v1/metrics</c>, <c>/v1/logs</c>) and <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, as Aspire sets them, read
/// from configuration (which includes the environment) and checked at start: a protocol the exporter does not speak, or
/// an endpoint that is not a URL, stops the service with the reason instead of losing its telemetry quietly.
/// </summary>
internal sealed record OtlpSettings(Uri Endpoint, OtlpExportProtocol Protocol)
{
    /// <summary>Null when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is not set: then nothing is exported.</summary>
    public static OtlpSettings? From(IConfiguration configuration)
    {
        var endpoint = configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        if (string.IsNullOrWhiteSpace(endpoint))
        {
            return null;
        }
        if (!Uri.TryCreate(endpoint.TrimEnd('/'), UriKind.Absolute, out var uri))
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
        return new OtlpSettings(uri, protocol);
    }
}
