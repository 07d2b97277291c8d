using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using VllmStack.Autoscaler.Actuators;
using VllmStack.Autoscaler.Configuration;
using VllmStack.ServiceDefaults.Kubernetes;

namespace VllmStack.Tests.Autoscaler;

/// <summary>The Kubernetes actuator against a loopback endpoint that records what the API server would receive and answers as it does.</summary>
public sealed class KubernetesReplicaActuatorTests
{
    private sealed record Received(string Method, string Path, string? Authorization, string? ContentType, string Body);

    private sealed class FakeScaleApi : IAsyncDisposable
    {
        private WebApplication _app = null!;

        public Uri Address { get; private set; } = null!;

        public ConcurrentQueue<Received> Requests { get; } = new();

        public ConcurrentQueue<HttpStatusCode> Failures { get; } = new();

        public int Replicas { get; set; } = 2;

        public static async Task<FakeScaleApi> StartAsync()
        {
            var api = new FakeScaleApi();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            api._app = builder.Build();
            api._app.MapMethods("/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale", ["GET", "PATCH"], api.HandleAsync);
            await api._app.StartAsync();
            api.Address = new Uri(api._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());
            return api;
        }

        private async Task HandleAsync(HttpContext context, string ns, string name)
        {
            var body = await new StreamReader(context.Request.Body).ReadToEndAsync();
            Requests.Enqueue(new Received(context.Request.Method, context.Request.Path, context.Request.Headers.Authorization.ToString(),
                context.Request.ContentType, body));
            context.Response.ContentType = "application/json";
            if (Failures.TryDequeue(out var failure))
            {
                context.Response.StatusCode = (int)failure;
                await context.Response.WriteAsync(new JsonObject
                {
                    ["kind"] = "Status", ["apiVersion"] = "v1", ["status"] = "Failure", ["code"] = (int)failure,
                    ["message"] = $"deployments.apps \"{name}\" answered {(int)failure} on purpose",
                }.ToJsonString());
                return;
            }
            if (context.Request.Method == "PATCH")
            {
                // As the API server: the media type decides, parameters such as charset do not.
                if (!MediaTypeHeaderValue.TryParse(context.Request.ContentType, out var mediaType) || mediaType.MediaType != "application/merge-patch+json")
                {
                    context.Response.StatusCode = 415;
                    return;
                }
                Replicas = JsonNode.Parse(body)!["spec"]!["replicas"]!.GetValue<int>();
            }
            await context.Response.WriteAsync(new JsonObject
            {
                ["kind"] = "Scale",
                ["apiVersion"] = "autoscaling/v1",
                ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = ns, ["resourceVersion"] = "41" },
                ["spec"] = new JsonObject { ["replicas"] = Replicas },
                ["status"] = new JsonObject { ["replicas"] = Replicas, ["selector"] = "app=vllm" },
            }.ToJsonString());
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }

    [Fact]
    public async Task Reads_and_patches_the_scale_subresource_with_the_service_account_token_and_explains_api_errors()
    {
        await using var api = await FakeScaleApi.StartAsync();
        var directory = Directory.CreateTempSubdirectory("vllmstack-sa-");
        try
        {
            var tokenPath = Path.Combine(directory.FullName, "token");
            await File.WriteAllTextAsync(tokenPath, "token-one\n");
            var options = new KubernetesScaleOptions { Namespace = "llm", ApiServer = api.Address, TokenPath = tokenPath, CaCertificatePath = "" };
            using var client = KubernetesApi.Create(api.Address, tokenPath, null, TimeSpan.FromSeconds(5), "VllmStack.Autoscaler", NullLogger.Instance);
            var actuator = new KubernetesReplicaActuator(client, options, TimeSpan.FromSeconds(5));

            Assert.Equal(2, await actuator.GetReplicasAsync("engine-llama", CancellationToken.None));
            await actuator.SetReplicasAsync("engine-llama", 3, CancellationToken.None);
            // Projected tokens rotate: the next call reads the file again.
            await File.WriteAllTextAsync(tokenPath, "token-two");
            Assert.Equal(3, await actuator.GetReplicasAsync("engine-llama", CancellationToken.None));

            var requests = api.Requests.ToArray();
            Assert.Equal(["GET", "PATCH", "GET"], requests.Select(r => r.Method));
            Assert.All(requests, r => Assert.Equal("/apis/apps/v1/namespaces/llm/deployments/engine-llama/scale", r.Path));
            Assert.Equal(["Bearer token-one", "Bearer token-one", "Bearer token-two"], requests.Select(r => r.Authorization));
            Assert.Equal("application/merge-patch+json", MediaTypeHeaderValue.Parse(requests[1].ContentType!).MediaType);
            Assert.Equal("""{"spec":{"replicas":3}}""", requests[1].Body);

            // Errors, answered with Status objects as the API server does.
            api.Failures.Enqueue(HttpStatusCode.Conflict);
            var conflict = await Assert.ThrowsAsync<ActuatorException>(() => actuator.SetReplicasAsync("engine-llama", 4, CancellationToken.None));
            Assert.True(conflict.Transient);
            Assert.Contains("Conflict", conflict.Message);

            api.Failures.Enqueue(HttpStatusCode.Forbidden);
            var forbidden = await Assert.ThrowsAsync<ActuatorException>(() => actuator.SetReplicasAsync("engine-llama", 4, CancellationToken.None));
            Assert.False(forbidden.Transient);
            Assert.Contains("get and patch on deployments/scale", forbidden.Message);
            Assert.Contains("answered 403 on purpose", forbidden.Message);

            api.Failures.Enqueue(HttpStatusCode.ServiceUnavailable);
            var unavailable = await Assert.ThrowsAsync<ActuatorException>(() => actuator.GetReplicasAsync("engine-llama", CancellationToken.None));
            Assert.True(unavailable.Transient);
            Assert.Contains("503", unavailable.Message);

            api.Failures.Enqueue(HttpStatusCode.NotFound);
            var missing = await Assert.ThrowsAsync<ActuatorException>(() => actuator.GetReplicasAsync("engine-llama", CancellationToken.None));
            Assert.False(missing.Transient);
            Assert.Contains("No Deployment engine-llama in namespace llm", missing.Message);
            // None of the failures changed anything.
            Assert.Equal(3, api.Replicas);

            // An API server that does not answer at all: a transient failure within the timeout, not a hang.
            var unreachable = new Uri($"http://127.0.0.1:{FreePort()}/");
            using var deadClient = KubernetesApi.Create(unreachable, tokenPath, null, TimeSpan.FromSeconds(2), "VllmStack.Autoscaler", NullLogger.Instance);
            var dead = new KubernetesReplicaActuator(deadClient, options, TimeSpan.FromSeconds(2));
            var down = await Assert.ThrowsAsync<ActuatorException>(() => dead.GetReplicasAsync("engine-llama", CancellationToken.None));
            Assert.True(down.Transient);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
