using VllmStack.ServiceDefaults.Telemetry;
using System.Text.Json;
using VllmStack.Autoscaler.Actuators;
using VllmStack.Autoscaler.Configuration;
using VllmStack.Autoscaler.Inputs;
using VllmStack.Autoscaler.Scaling;
using VllmStack.Autoscaler.Stats;
using VllmStack.ServiceDefaults;
using VllmStack.ServiceDefaults.Discovery;
using VllmStack.ServiceDefaults.Kubernetes;

var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ApplicationName = "VllmStack.Autoscaler" });
var options = builder.Configuration.GetSection(AutoscalerOptions.Section).Get<AutoscalerOptions>() ?? new AutoscalerOptions();
var problems = options.Validate().ToList();
var router = options.Router ?? (await ServiceAddresses.ResolveAsync(builder.Configuration, $"http+https://{options.RouterService}")).FirstOrDefault()?.ToString();
if (router is null)
{
    problems.Add($"no router: set Autoscaler:Router or services__{options.RouterService}__http__0");
}
if (problems.Count > 0)
{
    return await ServiceStartup.ReportProblemsAsync(problems);
}

builder.AddServiceDefaults();
builder.UseConciseConsoleLogging();
builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
var timeout = TimeSpan.FromSeconds(options.RequestTimeoutSeconds);
var services = builder.Services;
services.AddSingleton(options);
services.AddSingleton(TimeProvider.System);
services.AddSingleton<AutoscalerMetrics>();
// Its load reads and scaling calls run every second: traced, they would bury the requests users make.
services.AddHttpClient("autoscaler").WithoutTracing();
services.AddSingleton(sp => new RouterLoadReader(sp.GetRequiredService<IHttpClientFactory>().CreateClient("autoscaler"), new Uri(router!.TrimEnd('/') + "/"), timeout));
if (options.Actuator == "kubernetes")
{
    services.AddSingleton<k8s.IKubernetes>(sp => KubernetesApi.Create(options.Kubernetes.ApiServer!, options.Kubernetes.TokenPath,
        options.Kubernetes.CaCertificatePath, timeout, "VllmStack.Autoscaler", sp.GetRequiredService<ILogger<KubernetesReplicaActuator>>()));
    services.AddSingleton<IReplicaActuator>(sp => new KubernetesReplicaActuator(sp.GetRequiredService<k8s.IKubernetes>(), options.Kubernetes, timeout));
}
else
{
    services.AddSingleton<IReplicaActuator>(sp => new LocalReplicaActuator(sp.GetRequiredService<IHttpClientFactory>().CreateClient("autoscaler"),
        new Uri(options.ScalingApi!.TrimEnd('/') + "/"), timeout));
}
services.AddHostedService<ScalingLoop>();

var app = builder.Build();
app.Services.GetRequiredService<AutoscalerMetrics>();
app.MapDefaultEndpoints();
// The last decision per target, with its reason and inputs: what the metrics show, in words.
app.MapGet("/decisions", (AutoscalerMetrics metrics) => Results.Json(metrics.LastDecisions, new JsonSerializerOptions(JsonSerializerDefaults.Web)));

var address = await app.StartAndAnnounceAsync("Autoscaler");
app.Logger.LogInformation("Autoscaler ready: url={Url} router={Router} actuator={Actuator} targets={Targets}",
    address, router, options.Actuator, string.Join(", ", options.Targets.Select(t => $"{t.Label} [{t.Policy.MinReplicas}–{t.Policy.MaxReplicas}]")));
await app.WaitForShutdownAsync();
return 0;
