using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;

namespace VllmStack.Hosting.Vllm;

/// <summary>
/// Declares one replica of an engine group as an Aspire resource of the group's mode — EngineSim as a project, vLLM as an
/// executable or as the <c>vllm/vllm-openai</c> container — with its own endpoint, a <c>/health</c> check, the group as
/// its parent in the dashboard, and the group's options, key and token read when it starts.
/// </summary>
internal static class ReplicaFactory
{
    public static IResource Create(IDistributedApplicationBuilder builder, VllmResource group, int index, SimulatorFactory? addSimulator)
    {
        var name = group.ReplicaName(index);
        return group.Mode switch
        {
            EngineMode.Container => Configure(builder.AddContainer(name, "vllm/vllm-openai")
                .WithImageTag(group.Options.ImageTag)
                // vLLM listens on 8000 in its image; Aspire proxies a port of its own to it.
                .WithHttpEndpoint(name: "http", targetPort: 8000)
                .WithContainerRuntimeArgs(context =>
                {
                    context.Args.Add("--gpus");
                    context.Args.Add(group.Options.GpuCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    // PyTorch shares tensors through /dev/shm.
                    context.Args.Add("--ipc=host");
                })
                .WithArgs(context =>
                {
                    context.Args.Add("--model");
                    context.Args.Add(group.Model);
                    foreach (var option in group.ServeOptions())
                    {
                        context.Args.Add(option);
                    }
                }), group, index),
            EngineMode.Executable => Configure(builder.AddExecutable(name, "vllm", builder.AppHostDirectory)
                .WithHttpEndpoint(name: "http", isProxied: false)
                .WithArgs(context => ServeArgs(context, group, name, "serve")), group, index),
            _ => Configure((addSimulator ?? throw new InvalidOperationException("A simulated engine needs the simulator project."))(builder, name)
                .WithHttpEndpoint(name: "http", isProxied: false)
                .WithArgs(context =>
                {
                    ServeArgs(context, group, name);
                    context.Args.Add("--latency-preset");
                    context.Args.Add(group.Options.SimulatorPreset);
                    if (group.KvCacheServer is { } cacheServer)
                    {
                        // Join the KV-cache network: report KV events to the cache server and offload evicted blocks to its pool.
                        context.Args.Add("--kv-cache-server");
                        context.Args.Add(cacheServer.GetEndpoint("http"));
                        context.Args.Add("--kv-offload");
                    }
                }), group, index),
        };
    }

    /// <summary><c>[serve] MODEL --host 127.0.0.1 --port PORT …options</c>: vLLM's command line, which the simulator shares.</summary>
    private static void ServeArgs(CommandLineArgsCallbackContext context, VllmResource group, string replica, string? subcommand = null)
    {
        if (subcommand is not null)
        {
            context.Args.Add(subcommand);
        }
        var endpoint = ((IResourceWithEndpoints)group.ReplicaResources.First(r => r.Name == replica)).GetEndpoint("http");
        context.Args.Add(group.Model);
        context.Args.Add("--host");
        context.Args.Add("127.0.0.1");
        context.Args.Add("--port");
        context.Args.Add(endpoint.Property(EndpointProperty.TargetPort));
        foreach (var option in group.ServeOptions())
        {
            context.Args.Add(option);
        }
    }

    private static IResource Configure<T>(IResourceBuilder<T> replica, VllmResource group, int index)
        where T : IResourceWithEnvironment, IResourceWithEndpoints, IResourceWithWaitSupport
    {
        replica
            .WithAnnotation(new VllmReplicaAnnotation(group, index))
            .WithParentRelationship(group)
            .WithHttpHealthCheck("/health", endpointName: "http")
            .WithEnvironment(context =>
            {
                // Sleep mode's routes (the group's sleep and wake-up commands) exist only in vLLM's dev mode.
                context.EnvironmentVariables["VLLM_SERVER_DEV_MODE"] = "1";
                foreach (var (name, value) in group.ReplicaEnvironment())
                {
                    context.EnvironmentVariables[name] = value;
                }
            });
        if (group.KvCacheServer is { } cacheServer)
        {
            replica.WithAnnotation(new WaitAnnotation(cacheServer, WaitType.WaitUntilHealthy));
        }
        if (index >= group.Replicas)
        {
            replica.WithExplicitStart();
        }
        return replica.Resource;
    }
}
