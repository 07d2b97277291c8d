namespace VllmStack.Tests.Infrastructure;

/// <summary>EngineSim processes and a router process in front of them, started together and stopped together.</summary>
public static class RoutedEngines
{
    /// <summary>Starts <paramref name="engines"/> engines and a router over them, and waits (bounded) until every engine is routable.</summary>
    public static async Task<(EngineSimProcess[] Engines, RouterProcess Router)> StartAsync(int engines, string[] engineArgs, string routingLogic, params string[] routerArgs)
    {
        var started = await Task.WhenAll(Enumerable.Range(0, engines).Select(_ => EngineSimProcess.StartAsync(engineArgs)));
        var router = await RouterProcess.StartAsync(["--static-backends", string.Join(',', started.Select(e => e.BaseUrl)), "--routing-logic", routingLogic, .. routerArgs]);
        await router.WaitForEnginesAsync(e => e.Count(x => x!["routable"]!.GetValue<bool>()) == engines, TimeSpan.FromSeconds(15), $"{engines} routable engines");
        return (started, router);
    }

    public static async Task StopAsync(EngineSimProcess[] engines, RouterProcess router)
    {
        await router.DisposeAsync();
        foreach (var engine in engines)
        {
            await engine.DisposeAsync();
        }
    }
}
