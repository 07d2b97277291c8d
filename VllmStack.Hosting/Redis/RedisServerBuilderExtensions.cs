using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Microsoft.Extensions.DependencyInjection;
using VllmStack.Hosting.Common;

namespace VllmStack.Hosting.Redis;

public static class RedisServerBuilderExtensions
{
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan RestoreTimeout = TimeSpan.FromSeconds(180);

    /// <summary>
    /// The stack's Redis: Aspire's own <c>AddRedis</c> (the <c>redis</c> container) when publishing, or where a container
    /// engine runs; otherwise <see cref="AddRedisServer"/> — redis-server from PATH, else Garnet — with the same
    /// connection string and a PING health check, so that referencing resources cannot tell the difference.
    /// </summary>
    public static IResourceBuilder<IResourceWithConnectionString> AddRedisWithLocalFallback(this IDistributedApplicationBuilder builder, string name) =>
        builder.ExecutionContext.IsPublishMode || ContainerRuntime.Find() is not null
            ? builder.AddRedis(name)
            : builder.AddRedisServer(name);

    /// <summary>
    /// A Redis-compatible server as an executable: <c>redis-server</c> on PATH, else the Garnet dotnet tool of the
    /// repository's tool manifest (restored on first use); <paramref name="kind"/> forces one. Others reach it through
    /// <c>ConnectionStrings__name</c>; it is healthy once it answers PING (AspNetCore.HealthChecks.Redis, which comes with
    /// Aspire.Hosting.Redis). Throws, saying what to install, when neither can run here.
    /// </summary>
    public static IResourceBuilder<RedisServerResource> AddRedisServer(this IDistributedApplicationBuilder builder, string name, RedisServerKind? kind = null)
    {
        var toolDirectory = DotnetToolManifest.FindDirectory([builder.AppHostDirectory, Environment.CurrentDirectory]);
        var resource = Detect(name, kind, toolDirectory);
        string? connectionString = null;
        builder.Eventing.Subscribe<ConnectionStringAvailableEvent>(resource, async (_, cancellationToken) =>
            connectionString = await resource.ConnectionStringExpression.GetValueAsync(cancellationToken).ConfigureAwait(false));
        var healthCheck = $"{name}_check";
        builder.Services.AddHealthChecks().AddRedis(
            _ => connectionString ?? throw new InvalidOperationException($"Redis '{name}' has no connection string yet."), name: healthCheck);
        return builder.AddResource(resource)
            .WithEndpoint(name: RedisServerResource.PrimaryEndpointName, scheme: "tcp", isProxied: false)
            .WithArgs(context =>
            {
                var port = resource.PrimaryEndpoint.Property(EndpointProperty.TargetPort);
                if (resource.Kind == RedisServerKind.Garnet)
                {
                    // dotnet finds the tool through the manifest above the working directory.
                    context.Args.Add("tool");
                    context.Args.Add("run");
                    context.Args.Add(RedisServerResource.GarnetTool);
                    context.Args.Add("--");
                    // The cache server writes a chunk and its bookkeeping in one Lua script: Garnet runs scripts only with
                    // --lua, and atomically (keys locked) only in transaction mode.
                    context.Args.Add("--lua");
                    context.Args.Add("--lua-transaction-mode");
                }
                context.Args.Add("--port");
                context.Args.Add(port);
                context.Args.Add("--bind");
                context.Args.Add("127.0.0.1");
                if (resource.Kind == RedisServerKind.RedisServer)
                {
                    foreach (var arg in new[] { "--save", "", "--appendonly", "no" })
                    {
                        context.Args.Add(arg);
                    }
                }
                if (resource.Password is { } password)
                {
                    if (resource.Kind == RedisServerKind.Garnet)
                    {
                        context.Args.Add("--auth");
                        context.Args.Add("Password");
                        context.Args.Add("--password");
                    }
                    else
                    {
                        context.Args.Add("--requirepass");
                    }
                    context.Args.Add(password);
                }
            })
            .WithInitialState(new CustomResourceSnapshot
            {
                ResourceType = "Redis",
                Properties = [new("redis.server", resource.Description)],
            })
            .WithHealthCheck(healthCheck);
    }

    /// <summary>Requires <paramref name="password"/> (<c>AUTH</c>); the connection string then ends in <c>,password=…</c>.</summary>
    public static IResourceBuilder<RedisServerResource> WithPassword(this IResourceBuilder<RedisServerResource> builder, IResourceBuilder<ParameterResource> password)
    {
        builder.Resource.Password = password.Resource;
        return builder;
    }

    /// <summary>redis-server when it answers <c>--version</c>, else Garnet (restoring the tool manifest once if needed).</summary>
    internal static RedisServerResource Detect(string name, RedisServerKind? forced, string? toolDirectory)
    {
        if (forced != RedisServerKind.Garnet && Executables.Which("redis-server") is { } server
            && Executables.Output(server, ["--version"], null, ProbeTimeout) is { } serverVersion)
        {
            return new RedisServerResource(name, RedisServerKind.RedisServer, server, toolDirectory ?? Environment.CurrentDirectory)
            {
                Version = RedisServerResource.ServerVersion().Match(serverVersion) is { Success: true } m ? m.Groups[1].Value : null,
            };
        }
        if (forced != RedisServerKind.RedisServer && toolDirectory is not null && GarnetVersion(toolDirectory) is { } garnetVersion)
        {
            return new RedisServerResource(name, RedisServerKind.Garnet, "dotnet", toolDirectory)
            {
                Version = RedisServerResource.GarnetVersion().Match(garnetVersion) is { Success: true } g ? g.Groups[1].Value : null,
            };
        }
        var advice = forced switch
        {
            RedisServerKind.RedisServer => "install redis-server on PATH (apt-get install redis-server)",
            RedisServerKind.Garnet => $"restore Garnet: dotnet tool restore in the repository root (its tool manifest lists {RedisServerResource.GarnetTool})",
            _ => "install redis-server on PATH (apt-get install redis-server), or restore the Garnet tool (dotnet tool restore in the repository root), or run a container engine",
        };
        throw new DistributedApplicationException($"Redis '{name}' cannot start: nothing here can run it. {advice}.");
    }

    private static string? GarnetVersion(string toolDirectory)
    {
        string[] version = ["tool", "run", RedisServerResource.GarnetTool, "--", "--version"];
        if (Executables.Output("dotnet", version, toolDirectory, ProbeTimeout) is { } found)
        {
            return found;
        }
        // A fresh clone has the manifest but has not restored it yet: do it once, as `dotnet run` restores packages.
        Executables.Output("dotnet", ["tool", "restore"], toolDirectory, RestoreTimeout);
        return Executables.Output("dotnet", version, toolDirectory, ProbeTimeout);
    }
}
