using System.Text.Json;
using VllmStack.Router.Configuration;
using VllmStack.Router.Engines;

namespace VllmStack.Router.Health;

/// <summary>Keeps each engine's model list (base models and adapters) current from its <c>/v1/models</c>.</summary>
public sealed class ModelRefresher(EngineRegistry registry, EngineControlClient client, RouterOptions options, ILogger<ModelRefresher> logger)
    : PeriodicEngineTask(registry, logger)
{
    protected override TimeSpan Interval => TimeSpan.FromSeconds(options.ModelRefreshInterval);

    protected override async Task<bool> RunOnceAsync(Engine engine, CancellationToken cancellationToken)
    {
        var version = engine.ModelsVersion;
        var (ok, body) = await client.GetAsync(engine.Url, "v1/models", cancellationToken).ConfigureAwait(false);
        if (!ok)
        {
            return false;
        }
        List<ModelInfo> models;
        try
        {
            models = Parse(body);
        }
        catch (JsonException e)
        {
            logger.LogWarning("Engine {Engine} answered /v1/models with something other than a model list: {Reason}", engine.Name, e.Message);
            return false;
        }
        var before = engine.Models;
        if (!engine.TrySetModels(models, version))
        {
            return true; // the router loaded or unloaded an adapter meanwhile: the next refresh reads a list that has it
        }
        if (!before.SetEquals(engine.Models))
        {
            logger.LogInformation("Engine {Engine} serves {Models}", engine.Name, string.Join(", ", engine.Models.Order(StringComparer.Ordinal)));
        }
        return true;
    }

    internal static List<ModelInfo> Parse(string body)
    {
        using var document = JsonDocument.Parse(body);
        var result = new List<ModelInfo>();
        if (!document.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
        {
            return result;
        }
        foreach (var model in data.EnumerateArray())
        {
            if (model.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
            {
                result.Add(new ModelInfo(
                    id.GetString()!,
                    model.TryGetProperty("root", out var root) && root.ValueKind == JsonValueKind.String ? root.GetString() : null,
                    model.TryGetProperty("parent", out var parent) && parent.ValueKind == JsonValueKind.String ? parent.GetString() : null,
                    model.TryGetProperty("max_model_len", out var max) && max.ValueKind == JsonValueKind.Number && max.TryGetInt32(out var m) ? m : null,
                    model.TryGetProperty("created", out var created) && created.ValueKind == JsonValueKind.Number && created.TryGetInt64(out var c) ? c : 0,
                    model.TryGetProperty("owned_by", out var owner) && owner.ValueKind == JsonValueKind.String ? owner.GetString()! : "vllm"));
            }
        }
        return result;
    }
}
