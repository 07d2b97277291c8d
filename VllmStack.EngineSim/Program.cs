using VllmStack.ServiceDefaults.Telemetry;
using System.Net;
using VllmStack.EngineSim.Api;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;
using VllmStack.EngineSim.Faults;
using VllmStack.EngineSim.Metrics;
using VllmStack.ServiceDefaults;

return await EngineCommandLine.Create(RunAsync).Parse(args).InvokeAsync();

static async Task<int> RunAsync(EngineOptions options, CancellationToken cancellationToken)
{
    // vLLM's flags are parsed above; ASP.NET Core reads only the environment and appsettings.
    var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ApplicationName = "VllmStack.EngineSim" });
    // vLLM's exposition comes from Python's prometheus_client: numbers as "1.0", le="0.005".
    builder.AddServiceDefaults(o => o.Prometheus.NumberFormat = VllmStack.ServiceDefaults.Metrics.PrometheusNumberFormat.Python);
    builder.UseConciseConsoleLogging();
    builder.WebHost.ConfigureKestrel(kestrel =>
    {
        kestrel.AddServerHeader = false;
        // uvicorn's limits, not Kestrel's: no body size limit (vLLM checks what it must itself), no header count limit,
        // a 16 KiB header block (h11's default), header bytes taken as Latin-1 as Starlette decodes them.
        kestrel.Limits.MaxRequestBodySize = null;
        kestrel.Limits.MaxRequestHeaderCount = 10_000;
        kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
        kestrel.RequestHeaderEncodingSelector = _ => System.Text.Encoding.Latin1;
        // uvicorn closes idle keep-alive connections after VLLM_HTTP_TIMEOUT_KEEP_ALIVE seconds (Kestrel: 130 s).
        kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(Math.Max(options.HttpTimeoutKeepAliveSeconds, 0.001));
        if (options.Host is "localhost")
        {
            kestrel.ListenLocalhost(options.Port);
        }
        else if (options.Host is "0.0.0.0" or "" or "*")
        {
            kestrel.ListenAnyIP(options.Port);
        }
        else if (IPAddress.TryParse(options.Host, out var address))
        {
            kestrel.Listen(address, options.Port);
        }
        else
        {
            throw new ArgumentException($"--host '{options.Host}' is not an IP address or localhost.");
        }
    });

    var services = builder.Services;
    services.AddSingleton(options);
    services.AddSingleton(options.Latency);
    services.AddSingleton<EngineMetrics>();
    services.AddSingleton<HttpRequestMetrics>();
    services.AddSingleton(_ => new KvBlockPool(options.NumGpuBlocks, options.BlockSize, options.EnablePrefixCaching));
    services.AddSingleton(sp => new Scheduler(sp.GetRequiredService<KvBlockPool>(), options.MaxNumSeqs, options.MaxLoras, sp.GetRequiredService<EngineMetrics>(), options.SchedulingPolicy));
    services.AddSingleton<SequenceRunner>();
    services.AddSingleton<ModelCatalog>();
    services.AddSingleton<FaultInjector>();
    services.AddSingleton(sp => new SleepState(sp.GetRequiredService<Scheduler>(), options.EnableSleepMode));
    services.AddSingleton<ServerLoad>();
    services.AddHostedService<EngineWatchdog>();
    services.AddSingleton<GenerationEndpoints>();
    if (options.KvCacheServer is not null)
    {
        // Event batches go out every few hundred milliseconds: traced, they would bury the requests users make.
        services.AddHttpClient(nameof(VllmStack.EngineSim.Network.KvEventPublisher)).WithoutTracing();
        services.AddSingleton<VllmStack.EngineSim.Network.KvEventPublisher>();
        services.AddHostedService(sp => sp.GetRequiredService<VllmStack.EngineSim.Network.KvEventPublisher>());
    }
    if (options.KvOffload)
    {
        services.AddHttpClient(nameof(VllmStack.EngineSim.Network.KvPoolClient));
        services.AddSingleton(sp => new VllmStack.EngineSim.Network.KvPoolClient(
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(VllmStack.EngineSim.Network.KvPoolClient)), options,
            sp.GetRequiredService<ILogger<VllmStack.EngineSim.Network.KvPoolClient>>()));
        services.AddSingleton<VllmStack.EngineSim.Network.KvOffloader>();
        services.AddHostedService(sp => sp.GetRequiredService<VllmStack.EngineSim.Network.KvOffloader>());
    }

    var app = builder.Build();
    var metrics = app.Services.GetRequiredService<EngineMetrics>();
    app.Services.GetService<VllmStack.EngineSim.Network.KvOffloader>();
    metrics.Observe(app.Services.GetRequiredService<Scheduler>(), options);

    // As in vLLM: X-Request-Id on every response (401s included), the API key checked before the HTTP metrics see a
    // request, errors answered inside them.
    if (options.EnableRequestIdHeaders)
    {
        app.UseMiddleware<RequestIdHeaderMiddleware>();
    }
    app.UseMiddleware<ApiKeyMiddleware>();
    app.UseMiddleware<HttpRequestMetricsMiddleware>();
    app.UseMiddleware<ApiErrorMiddleware>();
    RouterSignals.Use(app, options);
    app.MapDefaultEndpoints();
    ModelEndpoints.Map(app, options);
    GenerationEndpoints.Map(app);
    EmbeddingEndpoints.Map(app, options);
    ScoringEndpoints.Map(app);
    AudioEndpoints.Map(app);
    TokenizerEndpoints.Map(app, options);
    SleepEndpoints.Map(app, options);
    RouterSignals.Map(app);
    // No fallback route: an unknown path (404) or a wrong method (405, with Allow) gets the body Starlette's router gives
    // in vLLM, {"detail": "Not Found"} / {"detail": "Method Not Allowed"} — not an OpenAI error object.
    app.UseStatusCodePages(context =>
    {
        var response = context.HttpContext.Response;
        response.ContentType = "application/json";
        return response.WriteAsync(System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["detail"] = Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(response.StatusCode),
        }), context.HttpContext.RequestAborted);
    });

    if (options.StartupDelaySeconds > 0)
    {
        // vLLM loads weights before uvicorn binds its socket: connections are refused meanwhile.
        app.Logger.LogInformation("Loading the model (simulated): not listening for {Seconds} s", options.StartupDelaySeconds);
        await Task.Delay(TimeSpan.FromSeconds(options.StartupDelaySeconds), cancellationToken);
    }
    var catalog = app.Services.GetRequiredService<ModelCatalog>();
    foreach (var lora in options.LoraModules)
    {
        // vLLM's init_static_loras: an adapter that does not load stops the server before it listens.
        if (ModelEndpoints.LoadError(lora, await catalog.LoadAsync(lora, inplace: false, cancellationToken), options) is { } error)
        {
            await Console.Error.WriteLineAsync($"ValueError: {error.Message}");
            return 1;
        }
    }
    var url = await app.StartAndAnnounceAsync("EngineSim", cancellationToken);
    if (app.Services.GetService<VllmStack.EngineSim.Network.KvEventPublisher>() is { } publisher)
    {
        publisher.EngineId = options.KvEngineId ?? url.TrimEnd('/');
    }
    app.Logger.LogInformation(
        "EngineSim ready: model={Model} url={Url} preset={Preset} max_num_seqs={MaxNumSeqs} num_gpu_blocks={Blocks} block_size={BlockSize}",
        options.PrimaryModelName, url, options.LatencyPresetName, options.MaxNumSeqs, options.NumGpuBlocks, options.BlockSize);
    if (options.IgnoredFlags.Count > 0)
    {
        app.Logger.LogInformation("Accepted without effect in a simulation: {Flags}", string.Join(", ", options.IgnoredFlags));
    }
    await app.WaitForShutdownAsync(cancellationToken);
    return app.Services.GetRequiredService<Scheduler>().IsDead && !options.KeepAliveOnEngineDeath ? 1 : 0;
}
