using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace VllmStack.ServiceDefaults.Telemetry;

/// <summary>
/// OTLP export of logs, metrics and traces with the OpenTelemetry hosting packages, in the shape of Aspire's
/// ServiceDefaults template: ASP.NET Core, HttpClient and runtime instrumentation plus our own sources and meters.
/// Without <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> nothing is registered, so nothing listens and nothing is paid for.
/// </summary>
internal static class TelemetryExport
{
    public static void Add(IHostApplicationBuilder builder, ServiceDefaultsOptions options)
    {
        var settings = OtlpSettings.From(builder.Configuration);
        if (settings is null)
        {
            return;
        }
        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });
        var untraced = options.UntracedPaths;
        builder.Services.AddOpenTelemetry()
            // The application's name and a generated service.instance.id unless OTEL_RESOURCE_ATTRIBUTES (service.name,
            // service.instance.id: Aspire's replica id, by which its dashboard matches telemetry to the resource) or
            // OTEL_SERVICE_NAME say otherwise: the SDK's detectors come after, and what comes after wins.
            .ConfigureResource(resource => resource.Clear()
                .AddService(builder.Environment.ApplicationName, autoGenerateServiceInstanceId: true)
                .AddTelemetrySdk()
                .AddEnvironmentVariableDetector())
            .WithTracing(tracing => tracing
                // Probes, scrapes and a service's background endpoints would bury the requests users make.
                .AddAspNetCoreInstrumentation(o => o.Filter = context => !untraced.Contains(context.Request.Path.Value ?? ""))
                .AddHttpClientInstrumentation()
                .AddSource([.. options.ActivitySources]))
            .WithMetrics(metrics => metrics
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter([.. options.Meters])
                // OpenTelemetry names may not contain ':'; vLLM's do. Over OTLP they travel as vllm.x (Prometheus keeps vllm:x).
                .AddView(instrument => instrument.Name.Contains(':') ? new MetricStreamConfiguration { Name = instrument.Name.Replace(':', '.') } : null))
            .UseOtlpExporter(settings.Protocol, settings.Endpoint);
        builder.Services.AddHostedService(sp => new TelemetryShutdown(sp, options.TelemetryShutdownTimeout));
    }

    /// <summary>
    /// Exports what is left within one short bound when the host stops: the three providers at once, each given the
    /// bound. Left to the container, each would wait 5 s in turn for a collector that has already gone (the Aspire
    /// dashboard, locally) and hold up the stop.
    /// </summary>
    private sealed class TelemetryShutdown(IServiceProvider services, TimeSpan timeout) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken)
        {
            var milliseconds = (int)timeout.TotalMilliseconds;
            var tracer = services.GetService<TracerProvider>();
            var meter = services.GetService<MeterProvider>();
            var logger = services.GetService<LoggerProvider>();
            return Task.WhenAll(
                Task.Run(() => tracer?.Shutdown(milliseconds), CancellationToken.None),
                Task.Run(() => meter?.Shutdown(milliseconds), CancellationToken.None),
                Task.Run(() => logger?.Shutdown(milliseconds), CancellationToken.None));
        }
    }
}
