using System.Text;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;
using VllmStack.EngineSim.Faults;
using VllmStack.EngineSim.Generation;
using VllmStack.EngineSim.Metrics;
using VllmStack.EngineSim.Tokenization;

namespace VllmStack.EngineSim.Api;

/// <summary>
/// vLLM's speech-to-text APIs, <c>/v1/audio/transcriptions</c> and <c>/v1/audio/translations</c>: a
/// <c>multipart/form-data</c> body with <c>file</c> and <c>model</c> (and <c>language</c>, <c>prompt</c>,
/// <c>response_format</c> json or text, <c>temperature</c>), answered <c>{"text", "usage": {"type": "duration",
/// "seconds"}}</c>. The text is deterministic: words drawn from the audio bytes' stable hash, about 2.5 per second of
/// audio, taking 16 kHz 16-bit mono PCM as the measure of length. Streaming transcription is not simulated.
/// </summary>
public static class AudioEndpoints
{
    /// <summary>vLLM's <c>VLLM_MAX_AUDIO_CLIP_FILESIZE_MB</c> default: 25 MB of audio at most.</summary>
    private const long MaxAudioFileBytes = 25L * 1024 * 1024;

    /// <summary>Bytes per second of 16 kHz, 16-bit mono PCM: Whisper's input format.</summary>
    private const int BytesPerSecond = 32_000;

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/audio/transcriptions", (HttpContext context, EngineOptions options, ModelCatalog catalog, FaultInjector faults, EngineMetrics metrics) =>
            HandleAsync(context, options, catalog, faults, metrics));
        app.MapPost("/v1/audio/translations", (HttpContext context, EngineOptions options, ModelCatalog catalog, FaultInjector faults, EngineMetrics metrics) =>
            HandleAsync(context, options, catalog, faults, metrics));
    }

    private static async Task HandleAsync(HttpContext context, EngineOptions options, ModelCatalog catalog, FaultInjector faults, EngineMetrics metrics)
    {
        if (!context.Request.HasFormContentType)
        {
            throw new ApiException(ApiError.BadRequest("The request must be multipart/form-data with a 'file' and a 'model'."));
        }
        IFormCollection form;
        try
        {
            form = await context.Request.ReadFormAsync(context.RequestAborted);
        }
        catch (Exception e) when (e is InvalidDataException || (e is IOException && !context.RequestAborted.IsCancellationRequested))
        {
            // FastAPI's answer to a form it cannot parse (a truncated or malformed multipart body).
            throw new ApiException(new ApiError(400, "There was an error parsing the body", "Bad Request"));
        }
        // Starlette keeps the last of repeated form fields.
        var model = form["model"].LastOrDefault() ?? "";
        var target = catalog.Resolve(model) ?? throw new ApiException(ApiError.ModelNotFound(model));
        var file = form.Files.GetFile("file") ?? throw new ApiException(ApiError.BadRequest("'file' is required: the audio to transcribe.", "file"));
        if (file.Length > MaxAudioFileBytes)
        {
            throw new ApiException(ApiError.BadRequest("Maximum file size exceeded."));
        }
        var format = form["response_format"].LastOrDefault() is { Length: > 0 } given ? given : "json";
        if (format is not ("json" or "text"))
        {
            throw new ApiException(ApiError.BadRequest("Currently only support response_format `text` or `json`", "response_format"));
        }
        if (form["stream"].ToString().Equals("true", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(ApiError.BadRequest("EngineSim does not simulate streaming transcription; send stream=false.", "stream"));
        }
        if (faults.Check(context.Request, target.RequestedName) is { } fault)
        {
            throw new ApiException(fault);
        }

        ulong hash;
        await using (var audio = file.OpenReadStream())
        {
            using var copy = new MemoryStream();
            await audio.CopyToAsync(copy, context.RequestAborted);
            hash = System.IO.Hashing.XxHash64.HashToUInt64(copy.GetBuffer().AsSpan(0, (int)copy.Length));
        }
        var seconds = (int)Math.Max(1, Math.Ceiling(file.Length / (double)BytesPerSecond));
        var text = Transcript(hash, seconds);
        await PrefillPass.RunAsync(options, metrics, SimTokenizer.Encode(text).Length, context.RequestAborted);

        if (format == "text")
        {
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync(text, context.RequestAborted);
            return;
        }
        await ModelEndpoints.WriteJson(context, w =>
        {
            w.WriteStartObject();
            w.WriteString("text", text);
            w.WriteStartObject("usage");
            w.WriteString("type", "duration");
            w.WriteNumber("seconds", seconds);
            w.WriteEndObject();
            w.WriteEndObject();
        });
    }

    /// <summary>The same audio always reads the same: words picked by a generator seeded with its hash.</summary>
    public static string Transcript(ulong hash, int seconds)
    {
        var words = Math.Clamp(seconds * 5 / 2, 1, 2_000);
        var text = new StringBuilder();
        var state = hash;
        for (var i = 0; i < words; i++)
        {
            state = state * 6364136223846793005UL + 1442695040888963407UL;
            var word = WordList.Words[(int)((state >> 33) % (ulong)WordList.Words.Length)];
            text.Append(i == 0 ? char.ToUpperInvariant(word[0]) + word[1..] : " " + word);
        }
        return text.Append('.').ToString();
    }
}
