using VllmStack.CacheServer.Api;
using VllmStack.CacheServer.Configuration;
using VllmStack.CacheServer.Index;
using VllmStack.CacheServer.Pool;
using VllmStack.CacheServer.Stats;
using VllmStack.Redis;
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
RedisConnectionOptions? redisOptions = null;
if (connection is not null)
{
    try
    {
        redisOptions = RedisConnectionOptions.Parse(connection);
    }
    catch (FormatException e)
    {
        problems.Add($"ConnectionStrings__{options.ConnectionName}: {e.Message}");
    }
}
if (problems.Count > 0)
{
    return await ServiceStartup.ReportProblemsAsync(problems);
}

builder.AddServiceDefaults();
builder.UseConciseConsoleLogging();
builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
var services = builder.Services;
services.AddSingleton(options);
services.AddSingleton(sp => new RedisClient(redisOptions!, sp.GetRequiredService<ILogger<RedisClient>>()));
services.AddSingleton<RedisAvailability>();
services.AddSingleton(_ => new KvIndex(options.MaxIndexEntries, TimeSpan.FromSeconds(options.EngineTtlSeconds)));
services.AddSingleton<CacheMetrics>();
services.AddSingleton<KvChunkPool>();
services.AddHostedService<IndexExpiry>();
services.AddHostedService<PoolUsageRefresher>();
services.AddHealthChecks().AddCheck<RedisHealthCheck>("redis");

var app = builder.Build();
app.Services.GetRequiredService<CacheMetrics>();
app.UseMiddleware<ErrorMiddleware>();
app.MapDefaultEndpoints();
IndexEndpoints.Map(app);
PoolEndpoints.Map(app);
app.MapFallback(context => ErrorResults.Error(404, $"No route for {context.Request.Method} {context.Request.Path}.").ExecuteAsync(context));

var address = await app.StartAndAnnounceAsync("CacheServer");
app.Logger.LogInformation("Cache server ready: url={Url} redis={Redis} block_size={BlockSize} pool_budget={Budget}",
    address, redisOptions!.Endpoint, options.BlockSize, options.PoolBudgetBytes);
await app.WaitForShutdownAsync();
return 0;
