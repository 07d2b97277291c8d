using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using VllmStack.Router.Engines;
using VllmStack.Router.Forwarding;
using VllmStack.Router.Lora;
using VllmStack.Router.Stats;

namespace VllmStack.Router.Api;

/// <summary>
/// The LoRA adapter admin API — the catalogue the manager loads from, changed at run time (the Production Stack's LoRA
/// custom resource without Kubernetes):
/// <list type="bullet">
/// <item><c>GET /admin/lora_adapters</c>: <c>{"object":"list","data":[{"name","base_model","source","origin":"declared|runtime","engines":[url]}]}</c>.</item>
/// <item><c>POST /admin/lora_adapters</c> <c>{"name","base_model","source"}</c>: 201 with the adapter (200 when the same one exists;
/// 409 when the name is taken by another adapter or a base model; 400 for a bad body or a base model no engine serves).</item>
/// <item><c>DELETE /admin/lora_adapters/{name}</c>: 200 <c>{"name","deleted":true}</c>, unloaded from every engine; 404 when unknown.</item>
/// </list>
/// Guarded by <c>--admin-api-key</c>, else by the client keys (<see cref="ClientApiKeyMiddleware"/>).
/// </summary>
public static class LoraAdminEndpoints
{
    public const string Path = "/admin/lora_adapters";

    private const int MaxBodyBytes = 64 * 1024;
    private static readonly JsonWriterOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet(Path, (HttpContext context, LoraCatalog catalog, EngineRegistry registry) =>
            WriteAsync(context, 200, w =>
            {
                w.WriteStartObject();
                w.WriteString("object", "list");
                w.WriteStartArray("data");
                foreach (var adapter in catalog.Adapters.Values.OrderBy(a => a.Name, StringComparer.Ordinal))
                {
                    WriteAdapter(w, adapter, registry);
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }));
        app.MapPost(Path, AddAsync);
        // A catch-all, so that a name with '/' (a Hugging Face style `org/name`) can be deleted as it is spelled.
        app.MapDelete(Path + "/{**name}", RemoveAsync);
    }

    private static async Task AddAsync(HttpContext context, LoraCatalog catalog, EngineRegistry registry, ModelDemand demand)
    {
        LoraAdapter adapter;
        try
        {
            adapter = await ReadAsync(context);
        }
        catch (FormatException e)
        {
            await ErrorResponses.WriteAsync(context, 400, e.Message);
            return;
        }
        catch (ClientRequestException e)
        {
            await ErrorResponses.WriteAsync(context, e.Status, e.Message, e.Param);
            return;
        }
        if (LoraCatalogJson.Problem(adapter) is { } problem)
        {
            await ErrorResponses.WriteAsync(context, 400, problem, LoraCatalogJson.ProblemField(adapter));
            return;
        }
        var baseModels = registry.Engines.SelectMany(e => e.ModelInfos).Where(m => m.Parent is null).Select(m => m.Id).ToHashSet(StringComparer.Ordinal);
        if (baseModels.Contains(adapter.Name))
        {
            await ErrorResponses.WriteAsync(context, 409, $"`{adapter.Name}` is the name of a base model; choose another adapter name.", "name");
            return;
        }
        if (!baseModels.Contains(adapter.BaseModel) && !demand.IsKnown(adapter.BaseModel) && registry.Engines.All(e => e.ModelsKnown))
        {
            await ErrorResponses.WriteAsync(context, 400,
                $"No engine serves the base model `{adapter.BaseModel}`; served: {string.Join(", ", baseModels.Order(StringComparer.Ordinal))}.", "base_model");
            return;
        }
        bool added;
        try
        {
            added = await catalog.AddAsync(adapter with { Runtime = true }, context.RequestAborted);
        }
        catch (InvalidOperationException e)
        {
            await ErrorResponses.WriteAsync(context, 409, e.Message, "name");
            return;
        }
        catch (LoraCatalogStoreException e)
        {
            await ErrorResponses.WriteAsync(context, 503, $"The adapter was not added: {e.Message}", retryAfter: TimeSpan.FromSeconds(5));
            return;
        }
        // A DELETE of the same name may have come in between: answer with what was added.
        var stored = catalog.TryGet(adapter.Name, out var now) ? now : adapter with { Runtime = true };
        await WriteAsync(context, added ? 201 : 200, w => WriteAdapter(w, stored, registry));
    }

    private static async Task RemoveAsync(HttpContext context, string name, LoraCatalog catalog)
    {
        LoraAdapter? removed;
        try
        {
            removed = await catalog.RemoveAsync(name, context.RequestAborted);
        }
        catch (LoraCatalogStoreException e)
        {
            await ErrorResponses.WriteAsync(context, 503, $"The adapter was not removed: {e.Message}", retryAfter: TimeSpan.FromSeconds(5));
            return;
        }
        if (removed is null)
        {
            await ErrorResponses.WriteAsync(context, 404, $"The LoRA adapter `{name}` is not in the catalogue.", "name");
            return;
        }
        await WriteAsync(context, 200, w =>
        {
            w.WriteStartObject();
            w.WriteString("name", removed.Name);
            w.WriteBoolean("deleted", true);
            w.WriteEndObject();
        });
    }

    /// <exception cref="ClientRequestException">The body is too large (413, read no further than the limit) or broken off.</exception>
    /// <exception cref="FormatException">The body is not an adapter's JSON.</exception>
    private static async Task<LoraAdapter> ReadAsync(HttpContext context)
    {
        RequestChecks.RequireDeclaredLengthWithin(context.Request, MaxBodyBytes);
        var (buffer, length) = await JsonRequestReader.ReadBodyAsync(context.Request, MaxBodyBytes, context.RequestAborted);
        try
        {
            using var document = JsonDocument.Parse(buffer.AsMemory(0, length));
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("The body must be a JSON object {\"name\",\"base_model\",\"source\"}.");
            }
            string Text(string field) => root.TryGetProperty(field, out var value)
                ? value.ValueKind == JsonValueKind.String ? LoraCatalogJson.TextOf(value, field) : throw new FormatException($"'{field}' must be a string.")
                : "";
            return new LoraAdapter(Text("name"), Text("base_model"), Text("source"));
        }
        catch (JsonException e)
        {
            throw new FormatException($"The body is not valid JSON: {e.Message}");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void WriteAdapter(Utf8JsonWriter w, LoraAdapter adapter, EngineRegistry registry)
    {
        w.WriteStartObject();
        w.WriteString("name", adapter.Name);
        w.WriteString("base_model", adapter.BaseModel);
        w.WriteString("source", adapter.Source);
        w.WriteString("origin", adapter.Runtime ? "runtime" : "declared");
        w.WriteStartArray("engines");
        foreach (var engine in registry.Engines.Where(e => e.Serves(adapter.Name)))
        {
            w.WriteStringValue(engine.Url.ToString());
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static async Task WriteAsync(HttpContext context, int status, Action<Utf8JsonWriter> write)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(context.Response.BodyWriter, Options);
        write(writer);
        await writer.FlushAsync(context.RequestAborted);
    }
}
