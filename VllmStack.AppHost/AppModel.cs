using Microsoft.Extensions.Configuration;
using VllmStack.Hosting.Autoscaling;
using VllmStack.Hosting.Builder;
using VllmStack.Hosting.Publishing;
using VllmStack.Hosting.Redis;
using VllmStack.Hosting.Testing;
using VllmStack.Hosting.Vllm;

namespace VllmStack.AppHost;

/// <summary>
/// The stack, declared once: run by <c>dotnet run --project VllmStack.AppHost</c> and by the testing builder.
/// Parameters come from configuration, e.g. <c>--Parameters:model=Qwen/Qwen2.5-7B-Instruct --Parameters:router-port=9090</c>;
/// <c>publish --output-path deploy</c> writes the same model as Kubernetes manifests.
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

        // Secret parameters: empty means none. Published, they are keys of the Secret the user fills (secrets.env).
        // The token defaults to the HF_TOKEN of the AppHost's own environment, which engines would otherwise inherit.
        var hfToken = builder.AddParameter("hf-token", configuration["HF_TOKEN"] ?? "", secret: true);
        var engineApiKey = builder.AddParameter("engine-api-key", "", secret: true);

        // Redis runs with the stack, or is an external one given as ConnectionStrings:cache (--Parameters:external-redis=true).
        var cacheServer = builder.AddProjectByName("cacheserver", "VllmStack.CacheServer")
            .WithHttpHealthCheck("/health");
        if (configuration.GetValue<bool?>("Parameters:external-redis") ?? false)
        {
            cacheServer.WithReference(builder.AddConnectionString("cache"));
        }
        else
        {
            var cache = builder.AddRedis("cache");
            cacheServer.WithReference(cache).WaitFor(cache);
        }

        var engine = builder.AddVllm("engine", model)
            .WithReplicas(replicas)
            .WithEngineOptions(options =>
            {
                options.SimulatorPreset = preset;
                options.ImageTag = configuration["Parameters:vllm-image-tag"] ?? "latest";
                options.GpuCount = configuration.GetValue<int?>("Parameters:gpus-per-engine") ?? 1;
            })
            .WithHuggingFaceToken(hfToken)
            .WithApiKey(engineApiKey)
            .WithKvCacheServer(cacheServer);

        var router = builder.AddProjectByName("router", "VllmStack.Router")
            .WithHttpEndpoint(port: routerPort)
            .WithHttpHealthCheck("/health")
            .WithComputeResources(cpuRequest: "1", memoryRequest: "512Mi", memoryLimit: "2Gi")
            .WithArgs("--routing-logic", configuration["Parameters:routing-logic"] ?? "kvaware")
            .WithReference(cacheServer)
            .WithEngines(engine)
            .WaitFor(engine);
        if (builder.ExecutionContext.IsPublishMode)
        {
            // Locally the router has one fixed port; on a cluster a Service spreads clients over its replicas.
            router.WithReplicas(configuration.GetValue<int?>("Parameters:router-replicas") ?? 2);
        }

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
