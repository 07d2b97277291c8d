using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using VllmStack.Router.Configuration;

namespace VllmStack.Router.Stats;

/// <summary>
/// Demand the engines could not meet: per model, the requests answered 503 because no engine could take them (none
/// runs the model, they are starting, or none is healthy). An autoscaler reads it (<c>/engines</c>, metric
/// <c>vllmstack:router_unserved_requests_total</c>) to bring a model back from zero replicas. Also remembers the models
/// this router has served (and those configured in <see cref="RouterOptions.ScaleToZeroModels"/>), so that a model
/// whose engines are all gone is "scaled to zero" (503, retry) rather than unknown (404).
/// </summary>
public sealed class ModelDemand
{
    private static readonly Meter Meter = new(RouterMetrics.MeterName + ".Demand");
    private static readonly Counter<long> Unserved = Meter.CreateCounter<long>("vllmstack:router_unserved_requests",
        null, "Requests answered 503 because no engine could take them, per model (demand for an autoscaler).");

    private readonly ConcurrentDictionary<string, long> _unserved = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _known = new(StringComparer.Ordinal);

    public ModelDemand(RouterOptions options)
    {
        foreach (var model in (options.ScaleToZeroModels ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            _known[model] = true;
        }
    }

    /// <summary>A model some engine served: if its engines all go, it is scaled to zero, not unknown.</summary>
    public void Served(string model)
    {
        if (!_known.ContainsKey(model))
        {
            _known[model] = true;
        }
    }

    public bool IsKnown(string model) => _known.ContainsKey(model);

    public void RecordUnserved(string model)
    {
        _unserved.AddOrUpdate(model, 1, (_, count) => count + 1);
        Unserved.Add(1, new KeyValuePair<string, object?>("model", model));
    }

    /// <summary>Requests turned away so far, per model (running totals).</summary>
    public IReadOnlyDictionary<string, long> UnservedTotals => new Dictionary<string, long>(_unserved, StringComparer.Ordinal);
}
