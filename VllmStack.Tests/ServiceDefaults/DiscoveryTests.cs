using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using VllmStack.ServiceDefaults;
using VllmStack.ServiceDefaults.Discovery;

namespace VllmStack.Tests.ServiceDefaults;

/// <summary>Aspire's service discovery through Microsoft.Extensions.ServiceDiscovery, as our services use it.</summary>
public sealed class DiscoveryTests
{
    // Environment variables services__router__http__0 arrive in configuration as services:router:http:0.
    private static readonly IConfiguration Config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["services:router:http:0"] = "http://127.0.0.1:8080",
        ["services:router:https:0"] = "https://127.0.0.1:8443",
        ["services:engine:http:1"] = "http://127.0.0.1:8101",
        ["services:engine:http:0"] = "http://127.0.0.1:8100",
        ["services:broken:http:0"] = "not a url",
        ["ConnectionStrings:cache"] = "127.0.0.1:6379,password=secret",
    }).Build();

    [Fact]
    public async Task Addresses_come_in_index_order_and_the_first_scheme_with_any_wins()
    {
        Assert.Equal([new Uri("http://127.0.0.1:8100"), new Uri("http://127.0.0.1:8101")], await ServiceAddresses.ResolveAsync(Config, "http://engine"));
        Assert.Equal([new Uri("https://127.0.0.1:8443")], await ServiceAddresses.ResolveAsync(Config, "https+http://router"));
        Assert.Equal([new Uri("http://127.0.0.1:8080")], await ServiceAddresses.ResolveAsync(Config, "http+https://router"));
        Assert.Equal([new Uri("http://127.0.0.1:8100"), new Uri("http://127.0.0.1:8101")], await ServiceAddresses.ResolveAsync(Config, "https+http://engine"));
        // A name nothing configures has no address (an HttpClient would try it as a host name instead).
        Assert.Empty(await ServiceAddresses.ResolveAsync(Config, "http+https://nobody"));
    }

    [Fact]
    public async Task A_bad_url_is_reported_with_its_service()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => ServiceAddresses.ResolveAsync(Config, "http://broken"));
        Assert.Contains("services:broken", error.Message);
    }

    [Fact]
    public void Connection_strings_follow_the_aspire_convention()
    {
        Assert.Equal("127.0.0.1:6379,password=secret", ConnectionStrings.GetRequired(Config, "cache"));
        Assert.Null(ConnectionStrings.Get(Config, "missing"));
        Assert.Contains("ConnectionStrings__missing", Assert.Throws<InvalidOperationException>(() => ConnectionStrings.GetRequired(Config, "missing")).Message);
    }

    [Fact]
    public async Task Logical_hosts_rotate_over_replicas_and_literal_hosts_pass_through()
    {
        await using var first = await EchoServer.StartAsync();
        await using var second = await EchoServer.StartAsync();
        await using var other = await EchoServer.StartAsync();
        using var host = HostWithServiceDefaults(new()
        {
            ["services:engine:http:0"] = first.Url.ToString(),
            ["services:engine:http:1"] = second.Url.ToString(),
            ["services:router:http:0"] = other.Url.ToString(),
        });
        var http = host.Services.GetRequiredService<IHttpClientFactory>().CreateClient();

        var answers = new[] { await http.GetStringAsync("http://engine/v1/models?x=1"), await http.GetStringAsync("http://engine/v1/models?x=1") };
        Assert.Equal(new[] { $"{first.Port} /v1/models?x=1", $"{second.Port} /v1/models?x=1" }.Order(), answers.Order());
        // Aspire's https+http://: TLS when the service has an https endpoint, else http.
        Assert.Equal($"{other.Port} /a", await http.GetStringAsync("https+http://router/a"));
        // Hosts that are no service name (the router's engine probes, a cache server given by URL) go where they say.
        Assert.Equal($"{other.Port} /b", await http.GetStringAsync($"http://127.0.0.1:{other.Port}/b"));
        Assert.Equal($"{other.Port} /c", await http.GetStringAsync($"http://localhost:{other.Port}/c"));
    }

    [Fact]
    public async Task HttpClients_from_the_factory_reach_a_service_by_its_name()
    {
        await using var sim = await Infrastructure.EngineSimProcess.StartAsync(["--latency-preset", "instant"]);
        using var host = HostWithServiceDefaults(new() { ["services:engine:http:0"] = sim.BaseUrl.ToString() });
        var factory = host.Services.GetRequiredService<IHttpClientFactory>();

        var models = await factory.CreateClient().GetStringAsync("http://engine/v1/models");
        Assert.Contains(Infrastructure.EngineSimProcess.DefaultModel, models);
    }

    private static IHost HostWithServiceDefaults(Dictionary<string, string?> configuration)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Configuration.AddInMemoryCollection(configuration);
        builder.AddServiceDefaults();
        builder.Services.AddHttpClient();
        return builder.Build();
    }

    /// <summary>A loopback server that answers every GET with its port, path and query.</summary>
    private sealed class EchoServer(WebApplication app, Uri url) : IAsyncDisposable
    {
        public Uri Url { get; } = url;

        public int Port => Url.Port;

        public static async Task<EchoServer> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            app.MapGet("/{**path}", (HttpContext context) => $"{context.Connection.LocalPort} {context.Request.Path}{context.Request.QueryString}");
            await app.StartAsync();
            return new EchoServer(app, new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()));
        }

        public ValueTask DisposeAsync() => app.DisposeAsync();
    }
}
