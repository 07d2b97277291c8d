using Microsoft.Extensions.Configuration;
using VllmStack.Hosting.Autoscaling;
using VllmStack.Hosting.Builder;
using VllmStack.Hosting.Redis;
using VllmStack.Hosting.Testing;
using VllmStack.Hosting.Vllm;

namespace VllmStack.AppHost;

/// <summary>
/// The stack, declared once: run by <c>dotnet run --project VllmStack.AppHost</c> and by the testing builder.
/// Parameters come from configuration, e.g. <c>--Parameters:model=Qwen/Qwen2.5-7B-Instruct --Parameters:router-port=9090</c>.
/// </summary>
public sealed class AppModel : IDistributedApplicationModel
{
    public const string DefaultModel = "meta-llama/Llama-3.1-8B-Instruct";

    public static void Configure(DistributedApplicationBuilder builder)
    {
        var configuration = builder.Configuration;
        var model = builder.AddParameter("model", DefaultModel);
        var routerPort = configuration.GetValue<int?>("Parameters:router-port") ?? 8080;
        var replicas = configuration.GetValue<int?>("Parameters:engine-replicas") ?? 2;
        var preset = configuration["Parameters:engine-preset"] ?? "h100-8b";

        var cache = builder.AddRedis("cache");
        var cacheServer = builder.AddProjectByName("cacheserver", "VllmStack.CacheServer")
            .WithHttpHealthCheck("/health")
            .WithReference(cache)
            .WaitFor(cache);

        var engine = builder.AddVllm("engine", model)
            .WithReplicas(replicas)
            .WithEngineOptions(options => options.SimulatorPreset = preset)
            .WithKvCacheServer(cacheServer);

        var router = builder.AddProjectByName("router", "VllmStack.Router")
            .WithHttpEndpoint(port: routerPort)
            .WithHttpHealthCheck("/health")
            .WithArgs("--routing-logic", configuration["Parameters:routing-logic"] ?? "kvaware")
            .WithReference(cacheServer)
            .WithEngines(engine)
            .WaitFor(engine);

        if (configuration.GetValue<bool?>("Parameters:autoscaler") ?? true)
        {
            var scaleToZero = configuration.GetValue<bool?>("Parameters:scale-to-zero") ?? false;
            // With zero replicas the router answers 503 + Retry-After for the model (not 404) and counts the demand.
            router.WithArgs(context => scaleToZero ? ["--scale-to-zero-models", context.Runtime.ParameterValue(model.Resource)] : []);
            builder.AddAutoscaler("autoscaler", router)
                .WithScaleTarget(engine, policy =>
                {
                    policy.MinReplicas = configuration.GetValue<int?>("Parameters:autoscale-min") ?? 1;
                    policy.MaxReplicas = configuration.GetValue<int?>("Parameters:autoscale-max") ?? 4;
                    policy.ScaleToZero = scaleToZero;
                });
        }
    }
}
