using System.Security.Cryptography;
using System.Text.Json;
using VllmStack.EngineSim.Configuration;
using VllmStack.EngineSim.Engine;
using VllmStack.EngineSim.Faults;
using VllmStack.EngineSim.Generation;
using VllmStack.EngineSim.Tokenization;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.EngineSim.Api;

/// <summary><c>/v1/chat/completions</c> and <c>/v1/completions</c>, streaming and not, over the engine model.</summary>
public sealed class GenerationEndpoints(EngineOptions options, ModelCatalog catalog, SequenceRunner runner, FaultInjector faults)
{
    public const string RequestIdHeader = "x-request-id";

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/chat/completions", ctx => ctx.RequestServices.GetRequiredService<GenerationEndpoints>().HandleAsync(ctx, GenerationKind.Chat));
        app.MapPost("/v1/completions", ctx => ctx.RequestServices.GetRequiredService<GenerationEndpoints>().HandleAsync(ctx, GenerationKind.Completion));
    }

    public async Task HandleAsync(HttpContext context, GenerationKind kind)
    {
        var aborted = context.RequestAborted;
        GenerationRequest request;
        using (var body = await JsonRequest.ReadAsync(context.Request, aborted))
        {
            request = GenerationRequest.Parse(body.RootElement, kind, options, catalog, FaultInjector.AbortAfterTokens(context.Request));
        }
        if (faults.Check(context.Request, request.Target.RequestedName) is { } fault)
        {
            throw new ApiException(fault);
        }
        var requestId = RequestId(context, kind);
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var work = CreateSequences(request);
        var firstTokenDelay = FaultInjector.FirstTokenDelay(context.Request);

        if (request.Stream)
        {
            await StreamAsync(context, request, work, new StreamContext(requestId, created, request.Target.RequestedName, request.IncludeUsage), firstTokenDelay);
            return;
        }
        await Task.Delay(firstTokenDelay, aborted);
        var outcomes = await RunAllAsync(work, null, aborted);
        context.Response.ContentType = "application/json";
        await using var writer = JsonWriting.Create(context.Response.BodyWriter);
        WriteResponse(writer, request, requestId, created, outcomes);
        await writer.FlushAsync(aborted);
    }

    private sealed record Work(Sequence Sequence, TokenSource Source, GenerationParams Params, int Choice, PromptInput Prompt);

    private List<Work> CreateSequences(GenerationRequest request)
    {
        var work = new List<Work>(request.Prompts.Count * request.N);
        var endToken = request.Kind == GenerationKind.Chat ? SimTokenizer.EndOfTurnId : SimTokenizer.EndOfTextId;
        var namespaceHash = KvBlockHashes.Root(request.Target.BaseModel, request.Target.Lora);
        for (var p = 0; p < request.Prompts.Count; p++)
        {
            var prompt = request.Prompts[p];
            var promptHash = StableHash64.HashTokens((ulong)(request.Seed ?? options.Seed), prompt.Tokens);
            var parent = request.N > 1 ? new ParentRequest(request.N) : null;
            for (var k = 0; k < request.N; k++)
            {
                var choice = p * request.N + k;
                TokenSource source = options.Output == OutputMode.Echo
                    ? new EchoTokenSource(prompt.EchoTokens, endToken)
                    : new RandomTokenSource(promptHash + (ulong)k * 0x9E3779B97F4A7C15UL, endToken);
                work.Add(new Work(new Sequence(prompt.Tokens, request.Target.Lora, namespaceHash) { Parent = parent }, source, request.Params[p], choice, prompt));
            }
        }
        return work;
    }

    private async Task<SequenceOutcome[]> RunAllAsync(List<Work> work, Func<TokenDelta, ValueTask>? onDelta, CancellationToken cancellationToken)
    {
        if (work.Count == 1)
        {
            var w = work[0];
            return [await runner.RunAsync(w.Sequence, w.Source, w.Params, w.Choice, onDelta, cancellationToken)];
        }
        // One failing choice (a dropped client, an injected crash) stops its siblings too.
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tasks = work.Select(async w =>
        {
            try
            {
                return await runner.RunAsync(w.Sequence, w.Source, w.Params, w.Choice, onDelta, linked.Token);
            }
            catch
            {
                await linked.CancelAsync();
                throw;
            }
        }).ToArray();
        try
        {
            return await Task.WhenAll(tasks);
        }
        catch (OperationCanceledException) when (tasks.FirstOrDefault(t => t.IsFaulted) is { } faulted)
        {
            throw faulted.Exception!.InnerException!;
        }
    }

    private async Task StreamAsync(HttpContext context, GenerationRequest request, List<Work> work, StreamContext s, TimeSpan firstTokenDelay)
    {
        var aborted = context.RequestAborted;
        await using var sse = new SseWriter(context.Response);
        await sse.StartAsync(aborted);
        await Task.Delay(firstTokenDelay, aborted);
        var started = new bool[work.Count];
        var echoed = new bool[work.Count];
        var chat = request.Kind == GenerationKind.Chat;
        SequenceOutcome[] outcomes;
        try
        {
            outcomes = await RunAllAsync(work, delta =>
            {
                var role = chat && !started[delta.Choice] ? "assistant" : null;
                started[delta.Choice] = true;
                var text = delta.Text;
                if (request.EchoPrompt && !echoed[delta.Choice])
                {
                    echoed[delta.Choice] = true;
                    text = (work[delta.Choice].Prompt.Text ?? SimTokenizer.Decode(work[delta.Choice].Prompt.Tokens, skipSpecial: true)) + text;
                }
                return chat
                    ? sse.WriteAsync((s, delta, role, text), static (w, x) => OpenAiWriter.WriteChatChunk(w, x.s, x.delta.Choice, x.role, x.text, x.delta.FinishReason, x.delta.StopReason), aborted)
                    : sse.WriteAsync((s, delta, text), static (w, x) => OpenAiWriter.WriteCompletionChunk(w, x.s, x.delta.Choice, x.text, x.delta.FinishReason, x.delta.StopReason), aborted);
            }, aborted);
        }
        catch (ApiException e)
        {
            // Headers are gone: the error travels as a frame, then the stream ends as usual.
            await sse.WriteErrorAsync(e.Error, aborted);
            await sse.WriteDoneAsync(aborted);
            return;
        }
        if (request.IncludeUsage)
        {
            var (prompt, completion, cached) = Usage(request, outcomes);
            await sse.WriteAsync((s, chat, prompt, completion, cached), static (w, x) =>
                OpenAiWriter.WriteUsageChunk(w, x.s, x.chat ? "chat.completion.chunk" : "text_completion", x.prompt, x.completion, x.cached), aborted);
        }
        await sse.WriteDoneAsync(aborted);
    }

    private void WriteResponse(Utf8JsonWriter w, GenerationRequest request, string id, long created, SequenceOutcome[] outcomes)
    {
        var chat = request.Kind == GenerationKind.Chat;
        w.WriteStartObject();
        OpenAiWriter.WriteHeader(w, id, chat ? "chat.completion" : "text_completion", created, request.Target.RequestedName);
        w.WriteStartArray("choices");
        foreach (var outcome in outcomes.OrderBy(o => o.Choice))
        {
            w.WriteStartObject();
            w.WriteNumber("index", outcome.Choice);
            if (chat)
            {
                w.WriteStartObject("message");
                w.WriteString("role", "assistant");
                w.WriteString("content", outcome.Text);
                w.WriteNull("reasoning_content");
                w.WriteStartArray("tool_calls");
                w.WriteEndArray();
                w.WriteEndObject();
            }
            else
            {
                var prefix = "";
                if (request.EchoPrompt)
                {
                    var input = request.Prompts[outcome.Choice / request.N];
                    prefix = input.Text ?? SimTokenizer.Decode(input.Tokens, skipSpecial: true);
                }
                w.WriteString("text", prefix + outcome.Text);
            }
            w.WriteNull("logprobs");
            OpenAiWriter.WriteFinishReason(w, outcome.FinishReason);
            OpenAiWriter.WriteStopReason(w, outcome.StopReason);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        var (prompt, completion, cached) = Usage(request, outcomes);
        OpenAiWriter.WriteUsage(w, prompt, completion, cached);
        w.WriteEndObject();
    }

    /// <summary>Prompt tokens count once per prompt however many choices it has; cached tokens only when asked for.</summary>
    private (int Prompt, int Completion, int? Cached) Usage(GenerationRequest request, SequenceOutcome[] outcomes)
    {
        var prompt = request.Prompts.Sum(p => p.Tokens.Length);
        var completion = outcomes.Sum(o => o.CompletionTokens);
        int? cached = options.EnablePromptTokensDetails
            ? outcomes.Where(o => o.Choice % request.N == 0).Sum(o => o.CachedTokens)
            : null;
        return (prompt, completion, cached);
    }

    private static string RequestId(HttpContext context, GenerationKind kind)
    {
        var prefix = kind == GenerationKind.Chat ? "chatcmpl-" : "cmpl-";
        if (context.Request.Headers.TryGetValue(RequestIdHeader, out var given) && given.ToString() is { Length: > 0 and <= 128 } id)
        {
            context.Response.Headers[RequestIdHeader] = id;
            return prefix + id;
        }
        return prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
    }
}
