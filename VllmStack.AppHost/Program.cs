using Aspire.Hosting;
using Microsoft.Extensions.Configuration;
using VllmStack.Hosting.Autoscaler;
using VllmStack.Hosting.CacheServer;
using VllmStack.Hosting.Kubernetes;
using VllmStack.Hosting.Redis;
using VllmStack.Hosting.Router;
using VllmStack.Hosting.Vllm;

// The stack, declared once: `dotnet run` / `aspire run` runs it with the Aspire dashboard, the testing builder starts it in
// tests, `aspire publish` writes it as Kubernetes manifests. Settings come from configuration, e.g.
// `--Parameters:model=Qwen/Qwen2.5-7B-Instruct --Parameters:router-port=9090`.
var builder = DistributedApplication.CreateBuilder(args);
var configuration = builder.Configuration;
string Setting(string name, string fallback) => configuration[$"Parameters:{name}"] is { Length: > 0 } value ? value : fallback;
int Number(string name, int fallback) => configuration.GetValue<int?>($"Parameters:{name}") ?? fallback;
bool Flag(string name, bool fallback) => configuration.GetValue<bool?>($"Parameters:{name}") ?? fallback;

var model = builder.AddParameter("model", () => Setting("model", "meta-llama/Llama-3.1-8B-Instruct"), publishValueAsDefault: true);
// Secret parameters: empty means none. Published, they are keys of the Secret the user fills (secrets.env). The token
// defaults to the HF_TOKEN of the AppHost's own environment, which engines would otherwise not get.
var hfToken = builder.AddParameter("hf-token", () => configuration["Parameters:hf-token"] ?? configuration["HF_TOKEN"] ?? "", secret: true);
var engineApiKey = builder.AddParameter("engine-api-key", () => configuration["Parameters:engine-api-key"] ?? "", secret: true);

// Redis runs with the stack, or is an external one given as ConnectionStrings:cache (--Parameters:external-redis=true).
var cache = Flag("external-redis", false) ? builder.AddConnectionString("cache") : builder.AddRedisWithLocalFallback("cache");
var cacheServer = builder.AddKvCacheServer<Projects.VllmStack_CacheServer>("cacheserver", cache);

var engine = builder.AddVllm<Projects.VllmStack_EngineSim>("engine", model)
    .WithReplicas(Number("engine-replicas", 2))
    .WithEngineOptions(options =>
    {
        options.SimulatorPreset = Setting("engine-preset", "h100-8b");
        options.ImageTag = Setting("vllm-image-tag", "latest");
        options.GpuCount = Number("gpus-per-engine", 1);
    })
    .WithHuggingFaceToken(hfToken)
    .WithApiKey(engineApiKey)
    .WithKvCacheServer(cacheServer);

var routerPort = Number("router-port", 8080);
var router = builder.AddVllmRouter<Projects.VllmStack_Router>("router", routerPort == 0 ? null : routerPort)
    .WithComputeResources(cpuRequest: "1", memoryRequest: "512Mi", memoryLimit: "2Gi")
    .WithArgs("--routing-logic", Setting("routing-logic", "kvaware"))
    .WithReference(cacheServer)
    .WithEngines(engine)
    .WaitFor(engine)
    // Locally the router has one fixed port; on a cluster a Service spreads clients over its replicas.
    .WithPublishedReplicas(Number("router-replicas", 2));

if (Flag("autoscaler", true))
{
    var scaleToZero = Flag("scale-to-zero", false);
    if (scaleToZero)
    {
        // With zero replicas the router answers 503 + Retry-After for the model (not 404) and counts the demand.
        router.WithArgs(context =>
        {
            context.Args.Add("--scale-to-zero-models");
            context.Args.Add(model.Resource);
        });
    }
    builder.AddAutoscaler<Projects.VllmStack_Autoscaler>("autoscaler", router)
        .WithScaleTarget(engine, policy =>
        {
            policy.MinReplicas = Number("autoscale-min", 1);
            policy.MaxReplicas = Number("autoscale-max", 4);
            policy.ScaleToZero = scaleToZero;
        });
}

builder.AddKubernetesEnvironment("kubernetes");

builder.Build().Run();
