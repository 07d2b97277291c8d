using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace VllmStack.ServiceDefaults.Telemetry;

/// <summary>
/// OTLP export of logs, metrics and traces. The OpenTelemetry hosting package does not restore here
/// (DESIGN.md), so the tracer and meter providers are built from the core SDK and owned by a hosted service.
/// </summary>
internal static class TelemetryExport
{
    /// <summary>ASP.NET Core and HttpClient emit these themselves; no instrumentation package is needed.</summary>
    private static readonly string[] FrameworkActivitySources = ["Microsoft.AspNetCore", "System.Net.Http"];

    private static readonly string[] FrameworkMeters =
    [
        "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel", "Microsoft.AspNetCore.Routing",
        "Microsoft.AspNetCore.Diagnostics", "System.Net.Http", "System.Net.NameResolution", "System.Runtime",
    ];

    public static void Add(IHostApplicationBuilder builder, ServiceDefaultsOptions options)
    {
        var settings = OtlpSettings.From(builder.Configuration, builder.Environment.ApplicationName);
        if (settings is null)
        {
            return;
        }
        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.SetResourceBuilder(settings.CreateResource());
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
            logging.AddOtlpExporter(o => settings.Configure(o, "/v1/logs"));
        });
        builder.Services.AddSingleton<IStartupFilter>(new RequestActivityEnricher(options.UntracedPaths));
        builder.Services.AddSingleton(sp => new TelemetryProviders(settings, options));
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TelemetryProviders>());
    }

    /// <summary>Owns the providers: built when the host starts, flushed and disposed when it stops.</summary>
    internal sealed class TelemetryProviders : IHostedService, IDisposable
    {
        private readonly TracerProvider _tracer;
        private readonly MeterProvider _meter;
        private readonly TimeSpan _shutdownTimeout;

        public TelemetryProviders(OtlpSettings settings, ServiceDefaultsOptions options)
        {
            _shutdownTimeout = options.TelemetryShutdownTimeout;
            _tracer = Sdk.CreateTracerProviderBuilder()
                .SetResourceBuilder(settings.CreateResource())
                .AddSource([.. FrameworkActivitySources, .. options.ActivitySources])
                .SetSampler(new ParentBasedSampler(new AlwaysOnSampler()))
                .AddOtlpExporter(o => settings.Configure(o, "/v1/traces"))
                .Build();
            _meter = Sdk.CreateMeterProviderBuilder()
                .SetResourceBuilder(settings.CreateResource())
                .AddMeter([.. FrameworkMeters, .. options.Meters])
                // OpenTelemetry names may not contain ':'; vLLM's do. Over OTLP they travel as vllm.x (Prometheus keeps vllm:x).
                .AddView(instrument => instrument.Name.Contains(':') ? new MetricStreamConfiguration { Name = instrument.Name.Replace(':', '.') } : null)
                .AddOtlpExporter(o => settings.Configure(o, "/v1/metrics"))
                .Build();
        }

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken)
        {
            // Shut down (export what is left) within a short bound: a gone collector must not hold up the stop.
            var timeout = (int)_shutdownTimeout.TotalMilliseconds;
            _tracer.Shutdown(timeout);
            _meter.Shutdown(timeout);
            return Task.CompletedTask;
        }

        public void Dispose()
        {
            _tracer.Dispose();
            _meter.Dispose();
        }
    }
}
