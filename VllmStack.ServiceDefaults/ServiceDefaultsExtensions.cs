using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using VllmStack.ServiceDefaults.Metrics;
using VllmStack.ServiceDefaults.Telemetry;

namespace VllmStack.ServiceDefaults;

/// <summary>What every VllmStack service shares, in Aspire's shape: <c>AddServiceDefaults</c> and <c>MapDefaultEndpoints</c>.</summary>
public static class ServiceDefaultsExtensions
{
    public const string HealthPath = "/health";
    public const string AlivePath = "/alive";
    public const string LiveTag = "live";

    /// <summary>OpenTelemetry export, health checks, the Prometheus registry, service discovery and HttpClient defaults.</summary>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder, Action<ServiceDefaultsOptions>? configure = null)
        where TBuilder : IHostApplicationBuilder
    {
        var options = new ServiceDefaultsOptions();
        configure?.Invoke(options);
        builder.Services.AddSingleton(options);

        var prometheus = options.Prometheus;
        builder.Services.AddSingleton(prometheus);
        builder.Services.AddSingleton(sp => new PrometheusMetricsRegistry(sp.GetRequiredService<PrometheusExporterOptions>()));

        options.UntracedPaths.UnionWith([HealthPath, AlivePath, prometheus.Path]);
        TelemetryExport.Add(builder, options);

        builder.Services.AddHealthChecks().AddCheck("self", () => HealthCheckResult.Healthy(), [LiveTag]);

        builder.Services.AddServiceDiscovery();
        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            // http://name and https+http://name reach the endpoints in services__name__…; other hosts pass through.
            http.AddServiceDiscovery();
            http.ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                ConnectTimeout = options.HttpConnectTimeout,
                PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            });
            http.ConfigureHttpClient(client => client.Timeout = options.HttpClientTimeout);
        });
        return builder;
    }

    /// <summary>
    /// <c>/health</c> (every check), <c>/alive</c> (liveness checks only) and <c>/metrics</c>, in every
    /// environment: these services run behind cluster probes and scrapers.
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        // Resolving the registry here starts its listener, so that no measurement of the first requests is lost.
        var registry = app.Services.GetRequiredService<PrometheusMetricsRegistry>();
        var path = app.Services.GetRequiredService<PrometheusExporterOptions>().Path;

        app.MapHealthChecks(HealthPath, new HealthCheckOptions { AllowCachingResponses = false });
        app.MapHealthChecks(AlivePath, new HealthCheckOptions { Predicate = r => r.Tags.Contains(LiveTag), AllowCachingResponses = false });
        app.MapGet(path, async (HttpContext context) =>
        {
            context.Response.ContentType = PrometheusText.ContentType;
            context.Response.Headers.CacheControl = "no-store";
            await registry.WriteAsync(context.Response.Body, context.RequestAborted);
        }).ExcludeFromDescription();
        return app;
    }
}
