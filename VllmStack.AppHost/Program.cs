using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.Configuration;
using VllmStack.Hosting.Autoscaler;
using VllmStack.Hosting.CacheServer;
using VllmStack.Hosting.Kubernetes;
using VllmStack.Hosting.Models;
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

// Secret parameters: empty means none. Published, they are keys of the Secret the user fills (secrets.env). The token
// defaults to the HF_TOKEN of the AppHost's own environment, which engines would otherwise not get.
var hfToken = builder.AddParameter("hf-token", () => configuration["Parameters:hf-token"] ?? configuration["HF_TOKEN"] ?? "", secret: true);
var engineApiKey = builder.AddParameter("engine-api-key", () => configuration["Parameters:engine-api-key"] ?? "", secret: true);

// Redis runs with the stack, or is an external one given as ConnectionStrings:cache (--Parameters:external-redis=true).
var cache = Flag("external-redis", false) ? builder.AddConnectionString("cache") : builder.AddRedisWithLocalFallback("cache");
var cacheServer = builder.AddKvCacheServer<Projects.VllmStack_CacheServer>("cacheserver", cache);

// The models: the Models section (appsettings.json, or --Models:0:Name=… on the command line), else one model from the
// parameters. Each is its own engine group, scaled on its own; one router serves them all.
var models = ModelList.Load(configuration, new ModelDefaults(
    Model: Setting("model", "meta-llama/Llama-3.1-8B-Instruct"),
    Replicas: Number("engine-replicas", 2),
    SimulatorPreset: Setting("engine-preset", "h100-8b"),
    Gpus: Number("gpus-per-engine", 1),
    MinReplicas: Number("autoscale-min", 1),
    MaxReplicas: Number("autoscale-max", 4)));
var engines = new List<(ModelOptions Options, IResourceBuilder<ParameterResource> Model, IResourceBuilder<VllmResource> Group)>();
foreach (var declared in models)
{
    // The one default model keeps its parameter name "model" (published as such); the others are named after their group.
    var parameterName = declared.Group == ModelList.DefaultGroup ? "model" : $"{declared.Group}-model";
    var modelName = declared.Name;
    var model = builder.AddParameter(parameterName, () => modelName, publishValueAsDefault: true);
    var engine = builder.AddVllm<Projects.VllmStack_EngineSim>(declared.Group!, model)
        .WithReplicas(declared.Replicas!.Value)
        .WithEngineOptions(options =>
        {
            options.SimulatorPreset = declared.SimulatorPreset!;
            options.ImageTag = Setting("vllm-image-tag", "latest");
            options.GpuCount = declared.Gpus!.Value;
            options.MaxModelLen = declared.MaxModelLen;
            options.MaxLoras = declared.MaxLoras;
        })
        .WithHuggingFaceToken(hfToken)
        .WithApiKey(engineApiKey)
        .WithKvCacheServer(cacheServer);
    foreach (var adapter in declared.Adapters)
    {
        engine.WithLoraAdapter(adapter.Name, adapter.Source);
    }
    engines.Add((declared, model, engine));
}

var routerPort = Number("router-port", 8080);
var router = builder.AddVllmRouter<Projects.VllmStack_Router>("router", routerPort == 0 ? null : routerPort)
    .WithComputeResources(cpuRequest: "1", memoryRequest: "512Mi", memoryLimit: "2Gi")
    .WithArgs("--routing-logic", Setting("routing-logic", "kvaware"))
    .WithReference(cacheServer)
    // Locally the router has one fixed port; on a cluster a Service spreads clients over its replicas.
    .WithPublishedReplicas(Number("router-replicas", 2));
foreach (var (_, _, engine) in engines)
{
    router.WithEngines(engine).WaitFor(engine);
}

if (Flag("autoscaler", true))
{
    var scaleToZero = Flag("scale-to-zero", false);
    if (scaleToZero)
    {
        // With zero replicas the router answers 503 + Retry-After for the model (not 404) and counts the demand.
        // One argument listing every model, kept as parameter references (published, they stay parameters).
        var list = new ReferenceExpressionBuilder();
        foreach (var (_, model, _) in engines)
        {
            if (!list.IsEmpty)
            {
                list.AppendLiteral(",");
            }
            list.AppendFormatted(model.Resource);
        }
        router.WithArgs("--scale-to-zero-models", list.Build());
    }
    var autoscaler = builder.AddAutoscaler<Projects.VllmStack_Autoscaler>("autoscaler", router);
    foreach (var (declared, _, engine) in engines)
    {
        autoscaler.WithScaleTarget(engine, policy =>
        {
            policy.MinReplicas = declared.Autoscaling.MinReplicas;
            policy.MaxReplicas = declared.Autoscaling.MaxReplicas;
            policy.ScaleToZero = scaleToZero;
        });
    }
}

builder.AddKubernetesEnvironment("kubernetes");

builder.Build().Run();
