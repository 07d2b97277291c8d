using System.Text.Json;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;

namespace VllmStack.EngineSim.Api;

/// <summary><c>/v1/models</c> (adapters listed with their <c>parent</c>), <c>/version</c> and runtime LoRA loading.</summary>
public static class ModelEndpoints
{
    /// <summary>vLLM registers the runtime LoRA endpoints only when this environment variable is true.</summary>
    public const string RuntimeLoraVariable = "VLLM_ALLOW_RUNTIME_LORA_UPDATING";

    public static void Map(IEndpointRouteBuilder app, EngineOptions options)
    {
        app.MapGet("/v1/models", (ModelCatalog catalog, HttpContext context) => WriteJson(context, w => WriteModels(w, catalog, options)));
        app.MapGet("/version", (HttpContext context) => WriteJson(context, w =>
        {
            w.WriteStartObject();
            w.WriteString("version", options.Version);
            w.WriteEndObject();
        }));
        var runtimeLora = Environment.GetEnvironmentVariable(RuntimeLoraVariable) is { } flag
            && (flag.Equals("true", StringComparison.OrdinalIgnoreCase) || flag == "1");
        if (options.EnableLora && runtimeLora)
        {
            app.MapPost("/v1/load_lora_adapter", LoadAsync);
            app.MapPost("/v1/unload_lora_adapter", UnloadAsync);
        }
    }

    private static void WriteModels(Utf8JsonWriter w, ModelCatalog catalog, EngineOptions options)
    {
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        foreach (var name in catalog.BaseModels)
        {
            WriteModel(w, catalog, name, options.Model, null, options.MaxModelLen);
        }
        foreach (var lora in catalog.Loras)
        {
            WriteModel(w, catalog, lora.Name, lora.Path, lora.BaseModelName ?? options.PrimaryModelName, null);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteModel(Utf8JsonWriter w, ModelCatalog catalog, string id, string root, string? parent, int? maxModelLen)
    {
        w.WriteStartObject();
        w.WriteString("id", id);
        w.WriteString("object", "model");
        w.WriteNumber("created", catalog.Created);
        w.WriteString("owned_by", "vllm");
        w.WriteString("root", root);
        if (parent is null)
        {
            w.WriteNull("parent");
        }
        else
        {
            w.WriteString("parent", parent);
        }
        if (maxModelLen is { } max)
        {
            w.WriteNumber("max_model_len", max);
        }
        else
        {
            w.WriteNull("max_model_len");
        }
        w.WriteStartArray("permission");
        w.WriteStartObject();
        w.WriteString("id", $"modelperm-{id}");
        w.WriteString("object", "model_permission");
        w.WriteNumber("created", catalog.Created);
        w.WriteBoolean("allow_create_engine", false);
        w.WriteBoolean("allow_sampling", true);
        w.WriteBoolean("allow_logprobs", true);
        w.WriteBoolean("allow_search_indices", false);
        w.WriteBoolean("allow_view", true);
        w.WriteBoolean("allow_fine_tuning", false);
        w.WriteString("organization", "*");
        w.WriteNull("group");
        w.WriteBoolean("is_blocking", false);
        w.WriteEndObject();
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static async Task LoadAsync(HttpContext context, ModelCatalog catalog)
    {
        using var body = await JsonRequest.ReadAsync(context.Request, context.RequestAborted);
        var name = JsonRequest.String(body.RootElement, "lora_name");
        var path = JsonRequest.String(body.RootElement, "lora_path");
        if (string.IsNullOrWhiteSpace(name) || string.IsNullOrWhiteSpace(path))
        {
            throw new ApiException(ApiError.BadRequest("Both 'lora_name' and 'lora_path' must be provided.", string.IsNullOrWhiteSpace(name) ? "lora_name" : "lora_path"));
        }
        if (!catalog.TryLoad(new LoraModule(name, path, null)))
        {
            throw new ApiException(ApiError.BadRequest($"The lora adapter '{name}' has already been loaded.", "lora_name"));
        }
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync($"Success: LoRA adapter '{name}' added successfully.", context.RequestAborted);
    }

    private static async Task UnloadAsync(HttpContext context, ModelCatalog catalog)
    {
        using var body = await JsonRequest.ReadAsync(context.Request, context.RequestAborted);
        var name = JsonRequest.String(body.RootElement, "lora_name");
        if (string.IsNullOrWhiteSpace(name))
        {
            throw new ApiException(ApiError.BadRequest("'lora_name' must be provided.", "lora_name"));
        }
        if (!catalog.TryUnload(name))
        {
            throw new ApiException(ApiError.NotFound($"The lora adapter '{name}' cannot be found.", "lora_name"));
        }
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync($"Success: LoRA adapter '{name}' removed successfully.", context.RequestAborted);
    }

    internal static async Task WriteJson(HttpContext context, Action<Utf8JsonWriter> write)
    {
        context.Response.ContentType = "application/json";
        await using var writer = JsonWriting.Create(context.Response.BodyWriter);
        write(writer);
        await writer.FlushAsync(context.RequestAborted);
    }
}
