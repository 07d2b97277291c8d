using VllmStack.CacheServer.Api;
using VllmStack.CacheServer.Configuration;
using VllmStack.CacheServer.Index;
using VllmStack.CacheServer.Pool;
using VllmStack.CacheServer.Stats;
using StackExchange.Redis;
using VllmStack.ServiceDefaults;
using VllmStack.ServiceDefaults.Discovery;

var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ApplicationName = "VllmStack.CacheServer" });
var options = builder.Configuration.GetSection(CacheServerOptions.Section).Get<CacheServerOptions>() ?? new CacheServerOptions();
var problems = options.Validate().ToList();
string? connection = ConnectionStrings.Get(builder.Configuration, options.ConnectionName);
if (connection is null)
{
    problems.Add($"no Redis: set ConnectionStrings__{options.ConnectionName} (host:port[,password=…])");
}
ConfigurationOptions? redisOptions = null;
if (connection is not null)
{
    (redisOptions, var problem) = RedisConfiguration.Create(connection, options);
    if (problem is not null)
    {
        problems.Add($"ConnectionStrings__{options.ConnectionName}: {problem}");
    }
}
if (problems.Count > 0)
{
    return await ServiceStartup.ReportProblemsAsync(problems);
}
// Bounded by the connect timeout; a Redis that is down does not stop the start (it is retried in the background).
await using var redis = await ConnectionMultiplexer.ConnectAsync(redisOptions!);

builder.AddServiceDefaults();
builder.UseConciseConsoleLogging();
builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
var services = builder.Services;
services.AddSingleton(options);
services.AddSingleton<IConnectionMultiplexer>(redis);
services.AddSingleton<RedisAvailability>();
services.AddSingleton(_ => new KvIndex(options.MaxIndexEntries, TimeSpan.FromSeconds(options.EngineTtlSeconds)));
services.AddSingleton<CacheMetrics>();
services.AddSingleton<KvChunkPool>();
services.AddHostedService<IndexExpiry>();
services.AddHostedService<PoolUsageRefresher>();
services.AddHealthChecks().AddCheck<RedisHealthCheck>("redis");

var app = builder.Build();
app.Services.GetRequiredService<CacheMetrics>();
app.Services.GetRequiredService<RedisAvailability>().Watch(redis, app.Logger);
app.UseMiddleware<ErrorMiddleware>();
app.MapDefaultEndpoints();
IndexEndpoints.Map(app);
PoolEndpoints.Map(app);
app.MapFallback(context => ErrorResults.Error(404, $"No route for {context.Request.Method} {context.Request.Path}.").ExecuteAsync(context));

var address = await app.StartAndAnnounceAsync("CacheServer");
app.Logger.LogInformation("Cache server ready: url={Url} redis={Redis} connected={Connected} block_size={BlockSize} pool_budget={Budget}",
    address, string.Join(' ', redisOptions!.EndPoints), redis.IsConnected, options.BlockSize, options.PoolBudgetBytes);
await app.WaitForShutdownAsync();
return 0;
