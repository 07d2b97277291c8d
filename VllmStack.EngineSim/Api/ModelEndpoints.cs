using System.Text.Json;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;

namespace VllmStack.EngineSim.Api;

/// <summary>
/// <c>/v1/models</c> (adapters listed with their <c>parent</c>, in load order), <c>/version</c> and runtime LoRA loading
/// (<c>POST /v1/load_lora_adapter {"lora_name","lora_path"[,"load_inplace"]}</c>, <c>POST /v1/unload_lora_adapter
/// {"lora_name"}</c>: a plain-text 200, or vLLM's error with its status and <c>type</c>).
/// </summary>
public static class ModelEndpoints
{
    /// <summary>The routes; the LoRA ones only with <see cref="EngineOptions.AllowRuntimeLoraUpdating"/>.</summary>
    public static void Map(IEndpointRouteBuilder app, EngineOptions options)
    {
        app.MapGet("/v1/models", (ModelCatalog catalog, HttpContext context) => WriteJson(context, w => WriteModels(w, catalog, options)));
        app.MapGet("/version", (HttpContext context) => WriteJson(context, w =>
        {
            w.WriteStartObject();
            w.WriteString("version", options.Version);
            w.WriteEndObject();
        }));
        // vLLM registers these on the variable alone; without --enable-lora a load then fails in the engine.
        if (options.AllowRuntimeLoraUpdating)
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

    private static async Task LoadAsync(HttpContext context, ModelCatalog catalog, EngineOptions options, IHostApplicationLifetime lifetime)
    {
        JsonRequest.RequireJsonMediaType(context.Request);
        using var body = await JsonRequest.ReadAsync(context.Request, context.RequestAborted);
        var name = BodyString(body.RootElement, "lora_name");
        var path = BodyString(body.RootElement, "lora_path");
        // load_inplace is newer vLLM's; 0.11 ignores a field it does not know.
        var inplace = options.LoraLoadInplace && JsonRequest.Bool(body.RootElement, "load_inplace", false);
        if (name.Length == 0 || path.Length == 0)
        {
            throw new ApiException(InvalidUserInput("Both 'lora_name' and 'lora_path' must be provided."));
        }
        var lora = new LoraModule(name, path, null);
        // The engine finishes a load it began even when the client goes away, as vLLM's engine core does.
        if (LoadError(lora, await catalog.LoadAsync(lora, inplace, lifetime.ApplicationStopping), options) is { } error)
        {
            throw new ApiException(error);
        }
        await WritePlainAsync(context, $"Success: LoRA adapter '{name}' added successfully.");
    }

    /// <summary>
    /// The error vLLM answers a failed load with. vLLM 0.11 (<c>serving_models.py</c> load_lora_adapter): the engine's "Call to add_lora method failed: …" message,
    /// 404 <c>NotFoundError</c> when it says "No adapter found", else 400 <c>BadRequestError</c>. Newer vLLM: 404 with
    /// <c>LoRAAdapterNotFoundError</c>'s message (the path as given), else 500 <c>InternalServerError</c>.
    /// </summary>
    /// <remarks>Null when the adapter loaded. A name already loaded is 400 <c>InvalidUserInput</c> in every release.</remarks>
    internal static ApiError? LoadError(LoraModule lora, LoraLoadOutcome outcome, EngineOptions options)
    {
        if (outcome.Status == LoraLoadStatus.AlreadyLoaded)
        {
            return InvalidUserInput(options.LoraLoadInplace
                ? $"The lora adapter '{lora.Name}' has already been loaded. If you want to load the adapter in place, set 'load_inplace' to True."
                : $"The lora adapter '{lora.Name}' has already been loaded.");
        }
        if (outcome.Error is not { } error)
        {
            return null;
        }
        var engineMessage = "Call to add_lora method failed: " + error.Message;
        return (error.Failure, options.LoraLoadInplace) switch
        {
            (LoraLoadFailure.NotFound, false) => ApiError.NotFound(engineMessage),
            (LoraLoadFailure.NotFound, true) => ApiError.NotFound($"Loading lora {lora.Name} failed: No adapter found for {lora.Path}"),
            (_, false) => ApiError.BadRequest(engineMessage),
            _ => ApiError.ForStatus(500, engineMessage),
        };
    }

    private static async Task UnloadAsync(HttpContext context, ModelCatalog catalog, EngineOptions options)
    {
        JsonRequest.RequireJsonMediaType(context.Request);
        using var body = await JsonRequest.ReadAsync(context.Request, context.RequestAborted);
        var name = BodyString(body.RootElement, "lora_name");
        var intId = JsonRequest.Long(body.RootElement, "lora_int_id");
        if (name.Length == 0 && (options.LoraLoadInplace || intId is null or 0))
        {
            throw new ApiException(InvalidUserInput(options.LoraLoadInplace
                ? "'lora_name' needs to be provided to unload a LoRA adapter."
                : "either 'lora_name' and 'lora_int_id' needs to be provided."));
        }
        if (!catalog.TryUnload(name))
        {
            throw new ApiException(ApiError.NotFound($"The lora adapter '{name}' cannot be found."));
        }
        await WritePlainAsync(context, $"Success: LoRA adapter '{name}' removed successfully.");
    }

    private static ApiError InvalidUserInput(string message) => new(400, message, "InvalidUserInput");

    /// <summary>A required string field of vLLM's pydantic request model; a missing or mistyped one is FastAPI's 400.</summary>
    private static string BodyString(JsonElement body, string field)
    {
        if (!body.TryGetProperty(field, out var value))
        {
            throw new ApiException(new ApiError(400, $"[{{'type': 'missing', 'loc': ('body', '{field}'), 'msg': 'Field required'}}]", "Bad Request"));
        }
        return value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : throw new ApiException(new ApiError(400, $"[{{'type': 'string_type', 'loc': ('body', '{field}'), 'msg': 'Input should be a valid string'}}]", "Bad Request"));
    }

    /// <summary>vLLM answers these routes with a bare <c>Response(content=text)</c>: no content type.</summary>
    private static Task WritePlainAsync(HttpContext context, string text) =>
        context.Response.Body.WriteAsync(System.Text.Encoding.UTF8.GetBytes(text), context.RequestAborted).AsTask();

    internal static async Task WriteJson(HttpContext context, Action<Utf8JsonWriter> write)
    {
        context.Response.ContentType = "application/json";
        await using var writer = JsonWriting.Create(context.Response.BodyWriter);
        write(writer);
        await writer.FlushAsync(context.RequestAborted);
    }
}
