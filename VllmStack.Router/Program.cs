using VllmStack.ServiceDefaults.Telemetry;
using System.Net;
using VllmStack.Router.Admission;
using VllmStack.Router.Api;
using VllmStack.Router.Configuration;
using VllmStack.Router.Discovery;
using VllmStack.Router.Engines;
using VllmStack.Router.Forwarding;
using VllmStack.Router.Health;
using VllmStack.Router.Lora;
using VllmStack.Router.Routing;
using VllmStack.Router.Stats;
using VllmStack.ServiceDefaults;
using VllmStack.ServiceDefaults.Discovery;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(RouterCommandLine.Usage);
    return 0;
}

var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = "VllmStack.Router" });
builder.Configuration.AddCommandLine(RouterCommandLine.Normalize(args), RouterCommandLine.SwitchMappings);
RouterOptions options;
try
{
    options = builder.Configuration.GetSection(RouterOptions.Section).Get<RouterOptions>() ?? new RouterOptions();
}
catch (InvalidOperationException e)
{
    await Console.Error.WriteLineAsync($"error: {e.Message}{(e.InnerException is null ? "" : " " + e.InnerException.Message)}");
    return 2;
}
var problems = options.Validate().ToList();
if (problems.Count > 0)
{
    return await ServiceStartup.ReportProblemsAsync(problems);
}

builder.AddServiceDefaults(o => o.Prometheus.InstrumentFilter = RouterMetrics.Exported);
builder.UseConciseConsoleLogging();
// YARP logs every forwarded request at Information, and each failure it reports once more than the router, which logs
// and counts engine failures itself: its warnings are enough.
builder.Logging.AddFilter("Yarp", LogLevel.Warning);
builder.WebHost.ConfigureKestrel(kestrel =>
{
    kestrel.AddServerHeader = false;
    // The proxy enforces Router:MaxRequestBodyBytes itself (it stops reading past the limit), so that a chunked
    // body over the limit gets the same OpenAI-style 413 as one that declares its length.
    kestrel.Limits.MaxRequestBodySize = null;
    // Header values pass through byte for byte: Latin-1 maps every byte to one char and back, so UTF-8 and obs-text
    // bytes (which vLLM's uvicorn accepts) reach the engine as the client sent them, and engines' answers come back so.
    kestrel.RequestHeaderEncodingSelector = _ => System.Text.Encoding.Latin1;
    kestrel.ResponseHeaderEncodingSelector = _ => System.Text.Encoding.Latin1;
    var urlsConfigured = !string.IsNullOrEmpty(builder.Configuration["urls"]) || !string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_URLS"])
        || !string.IsNullOrEmpty(builder.Configuration["HTTP_PORTS"]) || !string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_HTTP_PORTS"]);
    if (options.Port is null && urlsConfigured)
    {
        return;
    }
    var port = options.Port ?? 8080;
    if (options.Host is "0.0.0.0" or "*" or "")
    {
        kestrel.ListenAnyIP(port);
    }
    else if (options.Host == "localhost")
    {
        kestrel.ListenLocalhost(port);
    }
    else
    {
        kestrel.Listen(IPAddress.Parse(options.Host), port);
    }
});

var services = builder.Services;
services.AddSingleton(options);
// Scrapes, probes and model refreshes every second or so: traced, they would bury the requests users make.
// Engines are uvicorn servers that close idle connections after 5 s: pooled ones are dropped sooner, so that a probe
// never reuses a connection the engine is closing.
services.AddHttpClient(EngineControlClient.HttpClientName).ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
{
    PooledConnectionIdleTimeout = TimeSpan.FromSeconds(4),
    UseProxy = false,
}).WithoutTracing();
services.AddSingleton<EngineControlClient>();
if (options.ServiceDiscovery == "k8s")
{
    services.AddSingleton<IEngineSource>(sp => new KubernetesEngineSource(options.Kubernetes, sp.GetRequiredService<ILogger<KubernetesEngineSource>>()));
}
else
{
    var staticUrls = options.StaticBackendUrls().ToHashSet();
    foreach (var service in RouterOptions.SplitList(options.EngineServices))
    {
        foreach (var url in await ServiceAddresses.ResolveAsync(builder.Configuration, $"http+https://{service}"))
        {
            staticUrls.Add(RouterOptions.ParseUrl(url.ToString()));
        }
    }
    services.AddSingleton<IEngineSource>(new StaticEngineSource(staticUrls));
}
if (options.DynamicConfigJson is { Length: > 0 } dynamicPath)
{
    services.AddSingleton(sp => new DynamicConfigEngineSource(dynamicPath, sp.GetRequiredService<ILogger<DynamicConfigEngineSource>>()));
    services.AddSingleton<IEngineSource>(sp => sp.GetRequiredService<DynamicConfigEngineSource>());
}
services.AddSingleton<EngineRegistry>();
services.AddHostedService(sp => sp.GetRequiredService<EngineRegistry>());
services.AddHostedService<ModelRefresher>();
services.AddHostedService<HealthProber>();
services.AddHostedService<EngineStatsScraper>();
var cacheServer = options.KvAware.CacheServer is { Length: > 0 } cacheServerUrl
    ? RouterOptions.ParseUrl(cacheServerUrl)
    : (await ServiceAddresses.ResolveAsync(builder.Configuration, $"http+https://{options.KvAware.CacheServerService}")).Select(u => RouterOptions.ParseUrl(u.ToString())).FirstOrDefault();
if (cacheServer is not null)
{
    services.AddHttpClient(nameof(KvLookupClient)).ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(1),
        PooledConnectionLifetime = TimeSpan.FromMinutes(10),
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(4),
        UseProxy = false,
    });
    services.AddSingleton(sp => new KvLookupClient(sp.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(KvLookupClient)), cacheServer,
        options.KvAware, sp.GetRequiredService<ILogger<KvLookupClient>>()));
}
else if (options.RoutingLogic == RoutingPolicyNames.KvAware)
{
    return await ServiceStartup.ReportProblemsAsync(["--routing-logic kvaware needs a cache server: set Router:KvAware:CacheServer (--cache-server URL) or services__cacheserver__http__0"]);
}
services.AddSingleton(sp => new RoutingPolicyHolder(options, sp.GetRequiredService<EngineRegistry>(), sp.GetRequiredService<ILogger<RoutingPolicyHolder>>(),
    sp.GetService<KvLookupClient>()));
services.AddHttpForwarder();
services.AddSingleton<EngineForwarder>();
services.AddSingleton<OutlierDetector>();
services.AddSingleton<RouterMetrics>();
services.AddSingleton<ModelDemand>();
services.AddSingleton<AdmissionGate>();
services.AddSingleton<ILoraCatalogStore>(sp => options.Lora switch
{
    { AdaptersConfigMap: { Length: > 0 } configMap } => new LoraCatalogConfigMapStore(configMap, options.Kubernetes, sp.GetRequiredService<ILogger<LoraCatalogConfigMapStore>>()),
    { AdaptersFile: { Length: > 0 } file } => new LoraCatalogFileStore(file),
    _ => new LoraCatalogMemoryStore(),
});
services.AddSingleton(sp => new LoraCatalog(options.Lora, sp.GetRequiredService<ILoraCatalogStore>(), sp.GetRequiredService<ILogger<LoraCatalog>>()));
services.AddHostedService(sp => sp.GetRequiredService<LoraCatalog>());
services.AddSingleton<LoraAdapterManager>();
services.AddHostedService(sp => sp.GetRequiredService<LoraAdapterManager>());
services.AddSingleton<ProxyEndpoint>();
services.AddHealthChecks().AddCheck<EnginesHealthCheck>("engines");

var app = builder.Build();
var registry = app.Services.GetRequiredService<EngineRegistry>();
var staticModels = options.StaticBackendUrls().Zip(options.StaticModelNames()).ToDictionary(p => p.First, p => p.Second);
var dynamicSource = app.Services.GetService<DynamicConfigEngineSource>();
registry.PresetModel = url => staticModels.GetValueOrDefault(url) ?? dynamicSource?.Current?.Models.GetValueOrDefault(url);
var policies = app.Services.GetRequiredService<RoutingPolicyHolder>();
if (dynamicSource is not null)
{
    dynamicSource.Changed += config =>
    {
        if (config.RoutingLogic is { } logic)
        {
            policies.Switch(logic);
        }
    };
}
app.Services.GetRequiredService<RouterMetrics>();
app.Services.GetRequiredService<AdmissionGate>();
try
{
    app.Services.GetRequiredService<LoraCatalog>();
}
catch (FormatException e)
{
    return await ServiceStartup.ReportProblemsAsync([$"--lora-adapters-file {options.Lora.AdaptersFile}: {e.Message}"]);
}

app.UseMiddleware<UnhandledErrorMiddleware>();
// Answers ASP.NET itself gives without a body (405 for a wrong method, 415, 400 from model binding) get an OpenAI-style one.
app.UseStatusCodePages(context => ErrorResponses.WriteAsync(context.HttpContext, context.HttpContext.Response.StatusCode,
    ErrorResponses.DefaultMessage(context.HttpContext)));
app.UseMiddleware<ClientApiKeyMiddleware>();
app.MapDefaultEndpoints();
ProxyEndpoint.Map(app);
RouterEndpoints.Map(app);
LoraAdminEndpoints.Map(app);
// No fallback route: unknown paths (404) and wrong methods (405, with Allow) are answered by the status code pages above.

var address = await app.StartAndAnnounceAsync("Router");
app.Logger.LogInformation("Router ready: url={Url} discovery={Discovery} routing={Routing} engines={Engines}",
    address, options.ServiceDiscovery, options.RoutingLogic, registry.Engines.Count);
await app.WaitForShutdownAsync();
return 0;
