using VllmStack.Router.Engines;
using VllmStack.Router.Routing;

namespace VllmStack.Tests.Router;

/// <summary>Engines and requests for routing tests.</summary>
internal static class RoutingTestEngines
{
    public static Engine[] Create(int count, int firstId = 0) =>
        [.. Enumerable.Range(firstId, count).Select(NewEngine)];

    public static Engine NewEngine(int id) => new(id, new Uri($"http://127.0.0.1:{8100 + id}"));

    public static void SetRunning(this Engine engine, double running, double kvCacheUsage = 0) =>
        engine.SetLoad(new EngineLoad(running, 0, kvCacheUsage, 0, 0, DateTimeOffset.UtcNow));

    public static RoutingRequest Request(string? sessionKey = null, string? prompt = null, string model = "m") =>
        new(model, sessionKey, prompt, "req");
}
