using VllmStack.AppHost;
using VllmStack.Hosting.Orchestration;

var builder = DistributedApplication.CreateBuilder(args);
AppModel.Configure(builder);
await using var app = builder.Build();
await app.RunAsync();
