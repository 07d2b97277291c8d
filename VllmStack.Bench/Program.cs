using System.CommandLine;
using VllmStack.Bench.MultiRound;
using VllmStack.Bench.Scenarios;

var runs = new Option<int>("--runs") { DefaultValueFactory = _ => 5, Description = "Measured runs; the median is reported." };
var duration = new Option<int>("--duration") { DefaultValueFactory = _ => 10, Description = "Seconds per run." };
var connections = new Option<int>("--connections") { DefaultValueFactory = _ => 64, Description = "Concurrent connections." };
var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 1, Description = "wrk threads (this machine has 2 cores, shared with the server)." };
var maxTokens = new Option<int>("--max-tokens") { DefaultValueFactory = _ => 16, Description = "Output tokens per request." };
var output = new Option<string>("--output") { DefaultValueFactory = _ => "bench-results", Description = "Folder for the JSON results." };

var enginesim = new Command("enginesim", "Non-streaming req/s of one EngineSim with the instant preset, measured with wrk.")
{
    runs, duration, connections, threads, maxTokens, output,
};
enginesim.SetAction(async (result, cancellationToken) =>
{
    var report = await EngineSimThroughput.RunAsync(new EngineSimThroughput.Settings(
        result.GetValue(runs), TimeSpan.FromSeconds(result.GetValue(duration)), result.GetValue(connections),
        result.GetValue(threads), result.GetValue(maxTokens), result.GetValue(output)!), cancellationToken);
    return report.Median.Errors == 0 ? 0 : 1;
});

var rate = new Option<int>("--rate") { DefaultValueFactory = _ => 1000, Description = "Fixed request rate for the latency measurement." };
var ttfbRequests = new Option<int>("--ttfb-requests") { DefaultValueFactory = _ => 300, Description = "Sequential streaming requests per TTFB measurement." };
var routerRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 5, Description = "Measured runs per path; medians are reported." };
var routerDuration = new Option<int>("--duration") { DefaultValueFactory = _ => 10, Description = "Seconds per measurement." };
var routerConnections = new Option<int>("--connections") { DefaultValueFactory = _ => 64, Description = "wrk connections for the maximum throughput." };
var routerOutput = new Option<string>("--output") { DefaultValueFactory = _ => "bench-results", Description = "Folder for the JSON results." };
var baselineRouter = new Option<string?>("--baseline-router") { Description = "Path of another build's VllmStack.Router.dll, measured as one more path (e.g. the previous version)." };
var router = new Command("router", "Router overhead against going straight to EngineSim (instant) and against nginx as a keep-alive proxy: max req/s, latency at a fixed rate, streaming TTFB.")
{
    routerRuns, routerDuration, routerConnections, rate, ttfbRequests, routerOutput, baselineRouter,
};
router.SetAction(async (result, cancellationToken) =>
{
    var report = await RouterOverhead.RunAsync(new RouterOverhead.Settings(
        result.GetValue(routerRuns), TimeSpan.FromSeconds(result.GetValue(routerDuration)), result.GetValue(routerConnections),
        result.GetValue(rate), result.GetValue(ttfbRequests), result.GetValue(routerOutput)!, result.GetValue(baselineRouter)), cancellationToken);
    return report.Summary.Sum(p => p.Errors) == 0 ? 0 : 1;
});

var poolRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 5, Description = "Measured runs; medians are reported." };
var poolRequests = new Option<int>("--requests") { DefaultValueFactory = _ => 20000, Description = "Operations per measurement." };
var poolConnections = new Option<int>("--connections") { DefaultValueFactory = _ => 32, Description = "Operations in flight." };
var chunkBytes = new Option<int>("--chunk-bytes") { DefaultValueFactory = _ => 32768, Description = "Bytes per chunk: 256 tokens × 128 KiB × 1/1024 (EngineSim's default scale)." };
var poolOutput = new Option<string>("--output") { DefaultValueFactory = _ => "bench-results", Description = "Folder for the JSON results." };
var pool = new Command("pool", "KV chunk pool put/get throughput against redis-benchmark SET/GET with the same value size.")
{
    poolRuns, poolRequests, poolConnections, chunkBytes, poolOutput,
};
pool.SetAction(async (result, cancellationToken) =>
{
    await PoolThroughput.RunAsync(new PoolThroughput.Settings(result.GetValue(poolRuns), result.GetValue(poolRequests), result.GetValue(poolConnections),
        result.GetValue(chunkBytes), result.GetValue(poolOutput)!), cancellationToken);
    return 0;
});

var policies = new Option<string>("--policies") { DefaultValueFactory = _ => "roundrobin,leastload,prefixaware,kvaware", Description = "Routing policies to compare." };
var policyDuration = new Option<int>("--duration") { DefaultValueFactory = _ => 40, Description = "Seconds per configuration." };
var policyUsers = new Option<int>("--users") { DefaultValueFactory = _ => 16, Description = "Concurrent conversations." };
var policyQps = new Option<double>("--qps") { DefaultValueFactory = _ => 4, Description = "Requests per second across users." };
var policyBlocks = new Option<int>("--num-gpu-blocks") { DefaultValueFactory = _ => 1000, Description = "KV blocks per engine (small, so placement matters)." };
var policyOutput = new Option<string>("--output") { DefaultValueFactory = _ => "bench-results", Description = "Folder for the JSON results." };
var policyRouterArgs = new Option<string>("--router-args") { DefaultValueFactory = _ => "", Description = "Extra router arguments, space-separated (e.g. --Router:Prefix:ImbalanceAbsolute=2)." };
var policyPool = new Option<string>("--pool") { DefaultValueFactory = _ => "off,on", Description = "Pool settings to run: off, on or both." };
var routing = new Command("policies", "Multi-round TTFT per routing policy on four simulated engines, without and with the shared KV pool.")
{
    policies, policyDuration, policyUsers, policyQps, policyBlocks, policyOutput, policyRouterArgs, policyPool,
};
routing.SetAction(async (result, cancellationToken) =>
{
    var rows = await RoutingPolicyComparison.RunAsync(new RoutingPolicyComparison.Settings(
        result.GetValue(policies)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), 4, result.GetValue(policyBlocks),
        TimeSpan.FromSeconds(result.GetValue(policyDuration)), result.GetValue(policyUsers), 5, result.GetValue(policyQps), 1000, 2000, 50, 100,
        result.GetValue(policyOutput)!, result.GetValue(policyRouterArgs)!.Split(' ', StringSplitOptions.RemoveEmptyEntries),
        [.. result.GetValue(policyPool)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => p == "on")]), cancellationToken);
    return rows.All(r => r.Errors <= r.Requests * 0.05) ? 0 : 1;
});

var lookupRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 5, Description = "Measured runs; medians are reported." };
var lookupRequests = new Option<int>("--requests") { DefaultValueFactory = _ => 400, Description = "Requests per run, alternating the two routers." };
var lookupTokens = new Option<int>("--prompt-tokens") { DefaultValueFactory = _ => 4000, Description = "Prompt length in tokens (about)." };
var lookupConcurrency = new Option<int>("--concurrency") { DefaultValueFactory = _ => 1, Description = "Requests in flight." };
var lookupOutput = new Option<string>("--output") { DefaultValueFactory = _ => "bench-results", Description = "Folder for the JSON results." };
var kvLookup = new Command("kvlookup", "What kvaware's lookup (tokenize + cache-server lookup) adds per request, against roundrobin over the same engines.")
{
    lookupRuns, lookupRequests, lookupTokens, lookupConcurrency, lookupOutput,
};
kvLookup.SetAction(async (result, cancellationToken) =>
{
    var report = await KvLookupLatency.RunAsync(new KvLookupLatency.Settings(result.GetValue(lookupRuns), result.GetValue(lookupRequests),
        result.GetValue(lookupTokens), result.GetValue(lookupConcurrency), result.GetValue(lookupOutput)!), cancellationToken);
    return report.Median.Fallbacks == 0 ? 0 : 1;
});

var chaosRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 3, Description = "Runs per configuration." };
var chaosStreams = new Option<int>("--streams") { DefaultValueFactory = _ => 24, Description = "Streaming chats per run." };
var chaosPlain = new Option<int>("--plain") { DefaultValueFactory = _ => 24, Description = "Non-streaming chats per run." };
var chaosPromptTokens = new Option<int>("--prompt-tokens") { DefaultValueFactory = _ => 3000, Description = "Prompt length in tokens (about), distinct per request." };
var chaosMaxTokens = new Option<int>("--max-tokens") { DefaultValueFactory = _ => 200, Description = "Output tokens per request." };
var chaosKillAfter = new Option<double>("--kill-after") { DefaultValueFactory = _ => 1.5, Description = "Seconds after the requests start when one engine is SIGKILLed." };
var chaosOutput = new Option<string>("--output") { DefaultValueFactory = _ => "bench-results", Description = "Folder for the JSON results." };
var chaos = new Command("chaos", "Streams and plain chats over three engines, one SIGKILLed mid-run: completion, error frames and a resumed stream's extra TTFT, without migration, with it, and with store-on-compute KV.")
{
    chaosRuns, chaosStreams, chaosPlain, chaosPromptTokens, chaosMaxTokens, chaosKillAfter, chaosOutput,
};
chaos.SetAction(async (result, cancellationToken) =>
{
    var rows = await ChaosMigration.RunAsync(new ChaosMigration.Settings(result.GetValue(chaosRuns), result.GetValue(chaosStreams), result.GetValue(chaosPlain),
        result.GetValue(chaosPromptTokens), result.GetValue(chaosMaxTokens), TimeSpan.FromSeconds(result.GetValue(chaosKillAfter)), result.GetValue(chaosOutput)!), cancellationToken);
    return rows.Where(r => r.Config != "migration off").All(r => r.Completed == r.Requests) ? 0 : 1;
});

var overloadRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 3, Description = "Measured runs per configuration; medians are reported." };
var overloadDuration = new Option<int>("--duration") { DefaultValueFactory = _ => 10, Description = "Seconds of offered load per run." };
var overloadMultiples = new Option<string>("--loads") { DefaultValueFactory = _ => "1,2,5", Description = "Offered loads as multiples of the measured capacity." };
var overloadTimeout = new Option<int>("--request-timeout") { DefaultValueFactory = _ => 20, Description = "Seconds a client waits for a whole answer before giving up (counts as failed)." };
var overloadAdmission = new Option<string>("--admission-args") { DefaultValueFactory = _ => "--admission-control true --max-waiting-per-engine 1 --max-queue-wait 5", Description = "Router arguments of the 'admission on' runs, space-separated." };
var overloadOutput = new Option<string>("--output") { DefaultValueFactory = _ => "bench-results", Description = "Folder for the JSON results." };
var overload = new Command("overload", "Goodput and p99 TTFT against offered load (1×, 2×, 5× the engines' capacity), without and with admission control, on two small simulated engines.")
{
    overloadRuns, overloadDuration, overloadMultiples, overloadTimeout, overloadAdmission, overloadOutput,
};
overload.SetAction(async (result, cancellationToken) =>
{
    var rows = await OverloadComparison.RunAsync(new OverloadComparison.Settings(2, 4, 20, 32,
        [.. result.GetValue(overloadMultiples)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(m => double.Parse(m, System.Globalization.CultureInfo.InvariantCulture))],
        TimeSpan.FromSeconds(result.GetValue(overloadDuration)), result.GetValue(overloadRuns), TimeSpan.FromSeconds(result.GetValue(overloadTimeout)), 20,
        result.GetValue(overloadAdmission)!.Split(' ', StringSplitOptions.RemoveEmptyEntries), result.GetValue(overloadOutput)!), cancellationToken);
    return rows.Count > 0 ? 0 : 1;
});

var loraRuns = new Option<int>("--runs") { DefaultValueFactory = _ => 3, Description = "Runs per placement; medians are reported." };
var loraDuration = new Option<int>("--duration") { DefaultValueFactory = _ => 30, Description = "Seconds of measured offered load per run." };
var loraWarmup = new Option<int>("--warmup") { DefaultValueFactory = _ => 20, Description = "Seconds of the same load before the measured part (not counted): from cold engines to a steady state." };
var loraRate = new Option<double>("--rate") { DefaultValueFactory = _ => 8, Description = "Requests per second, sent open loop." };
var loraAdapters = new Option<int>("--adapters") { DefaultValueFactory = _ => 50, Description = "Adapters in the router's catalogue." };
var loraZipf = new Option<double>("--zipf") { DefaultValueFactory = _ => 1.0, Description = "Zipf exponent of the adapters' popularity." };
var loraMaxLoras = new Option<int>("--max-loras") { DefaultValueFactory = _ => 4, Description = "Adapter slots per engine (vLLM --max-loras)." };
var loraLoadSeconds = new Option<double>("--lora-load-seconds") { DefaultValueFactory = _ => 0.5, Description = "Simulated time of one adapter load (the engine runs no step meanwhile)." };
var loraMaxTokens = new Option<int>("--max-tokens") { DefaultValueFactory = _ => 48, Description = "Output tokens per request." };
var loraSeed = new Option<int>("--seed") { DefaultValueFactory = _ => 17, Description = "Seed of the adapter sequence." };
var loraOutput = new Option<string>("--output") { DefaultValueFactory = _ => "bench-results", Description = "Folder for the JSON results." };
var lora = new Command("lora", "Many LoRA adapters (Zipf requests) on four simulated engines through the router: --lora-placement demand against on-miss; throughput, TTFT p50/p99, adapter loads per minute, failed requests.")
{
    loraRuns, loraDuration, loraWarmup, loraRate, loraAdapters, loraZipf, loraMaxLoras, loraLoadSeconds, loraMaxTokens, loraSeed, loraOutput,
};
lora.SetAction(async (result, cancellationToken) =>
{
    var rows = await LoraPlacementComparison.RunAsync(new LoraPlacementComparison.Settings(result.GetValue(loraRuns), TimeSpan.FromSeconds(result.GetValue(loraDuration)),
        TimeSpan.FromSeconds(result.GetValue(loraWarmup)), result.GetValue(loraRate), result.GetValue(loraAdapters), result.GetValue(loraZipf), 4, result.GetValue(loraMaxLoras), result.GetValue(loraLoadSeconds),
        result.GetValue(loraMaxTokens), result.GetValue(loraSeed), TimeSpan.FromSeconds(60), result.GetValue(loraOutput)!), cancellationToken);
    return rows.All(r => r.Runs.All(run => run.Failed <= run.Sent * 0.05)) ? 0 : 1;
});

var root = new RootCommand("VllmStack benchmarks: each writes its figures as JSON and prints medians over several runs.") { enginesim, router, pool, routing, kvLookup, chaos, overload, lora, MultiRoundCommand.Create() };
return await root.Parse(args).InvokeAsync();
