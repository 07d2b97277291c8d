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
        FaultInjector.Abort(context.Request);

        if (request.Stream)
        {
            await StreamAsync(context, request, work, new StreamContext(requestId, created, request.ResponseModel, request.IncludeContinuousUsage), firstTokenDelay);
            return;
        }
        await Task.Delay(firstTokenDelay, aborted);
        var outcomes = await RunAllAsync(work, null, aborted);
        context.Response.ContentType = "application/json";
        await using var writer = JsonWriting.Create(context.Response.BodyWriter);
        WriteResponse(writer, request, work, requestId, created, outcomes);
        await writer.FlushAsync(aborted);
    }

    /// <param name="LogprobSeed">Seeds the choice's logprobs: the same request and choice always report the same values.</param>
    private sealed record Work(Sequence Sequence, TokenSource Source, GenerationParams Params, int Choice, PromptInput Prompt, ulong LogprobSeed);

    private List<Work> CreateSequences(GenerationRequest request)
    {
        var work = new List<Work>(request.Prompts.Count * request.N);
        var endToken = request.Kind == GenerationKind.Chat ? SimTokenizer.EndOfTurnId : SimTokenizer.EndOfTextId;
        var namespaceHash = KvBlockHashes.Root(request.Target.BaseModel, request.Target.Lora);
        for (var p = 0; p < request.Prompts.Count; p++)
        {
            var prompt = request.Prompts[p];
            var promptHash = KvBlockHashes.Block((ulong)(request.Seed ?? options.Seed), prompt.Tokens);
            var parent = request.N > 1 ? new ParentRequest(request.N) : null;
            for (var k = 0; k < request.N; k++)
            {
                var choice = p * request.N + k;
                var choiceSeed = promptHash + (ulong)k * 0x9E3779B97F4A7C15UL;
                // The text depends on the seed, the choice and the text before it (not on the prompt's tokens), so that a
                // continuation of a cut answer carries on word for word.
                var textSeed = (ulong)(request.Seed ?? options.Seed) + (ulong)k * 0x9E3779B97F4A7C15UL;
                TokenSource source = options.Output == OutputMode.Echo
                    ? new EchoTokenSource(prompt.EchoTokens, endToken)
                    : new RandomTokenSource(textSeed, ContextText(prompt), endToken);
                work.Add(new Work(new Sequence(prompt.Tokens, request.Target.Lora, namespaceHash, request.Priority) { Parent = parent }, source, request.Params[p], choice, prompt, choiceSeed));
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

    /// <summary>
    /// Streams as vLLM does: headers at once; at the first output, one role chunk per choice (and chat's echo); then a
    /// chunk per step of each choice, the last with its finish reason; then the usage chunk when asked for, and [DONE].
    /// </summary>
    private async Task StreamAsync(HttpContext context, GenerationRequest request, List<Work> work, StreamContext s, TimeSpan firstTokenDelay)
    {
        var aborted = context.RequestAborted;
        await using var sse = new SseWriter(context.Response);
        await sse.StartAsync(aborted);
        await Task.Delay(firstTokenDelay, aborted);
        var chat = request.Kind == GenerationKind.Chat;
        var promptTokens = work.Select(w => w.Prompt.Tokens.Length).ToArray();
        // Written once, before the first content chunk of any choice (vLLM's "first iteration").
        var opening = new Lazy<Task>(async () =>
        {
            foreach (var w in work)
            {
                await sse.WriteAsync((s, w.Choice, request.Role, promptTokens[w.Choice]), static (writer, x) =>
                    OpenAiWriter.WriteChatRoleChunk(writer, x.s, x.Choice, x.Role, x.Item4), aborted);
            }
            if (request.ChatEcho is { } echoText)
            {
                foreach (var w in work)
                {
                    await sse.WriteAsync((s, w.Choice, echoText, promptTokens[w.Choice]), static (writer, x) =>
                        OpenAiWriter.WriteChatChunk(writer, x.s, x.Choice, x.echoText, null, null, null, x.Item4, 0), aborted);
                }
            }
        });
        var echoed = new bool[work.Count];
        var textSent = new int[work.Count];
        SequenceOutcome[] outcomes;
        try
        {
            outcomes = await RunAllAsync(work, async delta =>
            {
                var w = work[delta.Choice];
                var logprobs = request.TopLogprobs is { } top ? new LogprobsWriter(chat, delta.TokenIds, top, w.LogprobSeed, delta.FirstTokenIndex, textSent[delta.Choice]) : null;
                if (chat)
                {
                    await opening.Value;
                    await sse.WriteAsync((s, delta, logprobs, promptTokens[delta.Choice]), static (writer, x) => OpenAiWriter.WriteChatChunk(
                        writer, x.s, x.delta.Choice, x.delta.Text, x.logprobs, x.delta.FinishReason, x.delta.StopReason, x.Item4, x.delta.CompletionTokens), aborted);
                    return;
                }
                var text = delta.Text;
                if (request.EchoPrompt && !echoed[delta.Choice])
                {
                    // The prompt goes out with the first step, its tokens' logprobs before the generated ones.
                    echoed[delta.Choice] = true;
                    text = PromptText(w.Prompt) + text;
                    logprobs = request.TopLogprobs is { } echoTop
                        ? new LogprobsWriter(false, [.. w.Prompt.Tokens, .. delta.TokenIds], echoTop, w.LogprobSeed, -w.Prompt.Tokens.Length, 0, firstHasNone: true)
                        : null;
                }
                textSent[delta.Choice] += text.Length;
                await sse.WriteAsync((s, delta, text, logprobs, promptTokens[delta.Choice]), static (writer, x) => OpenAiWriter.WriteCompletionChunk(
                    writer, x.s, x.delta.Choice, x.text, x.logprobs, x.delta.FinishReason, x.delta.StopReason, x.Item5, x.delta.CompletionTokens), aborted);
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

    /// <summary>The prompt as the text an answer continues: the rendered chat template, the completion prompt, or its tokens decoded.</summary>
    private static string ContextText(PromptInput prompt) => prompt.Text ?? SimTokenizer.Decode(prompt.Tokens);

    private static string PromptText(PromptInput prompt) => prompt.Text ?? SimTokenizer.Decode(prompt.Tokens, skipSpecial: true);

    private void WriteResponse(Utf8JsonWriter w, GenerationRequest request, List<Work> work, string id, long created, SequenceOutcome[] outcomes)
    {
        var chat = request.Kind == GenerationKind.Chat;
        w.WriteStartObject();
        OpenAiWriter.WriteHeader(w, id, chat ? "chat.completion" : "text_completion", created, request.ResponseModel);
        w.WriteStartArray("choices");
        foreach (var outcome in outcomes.OrderBy(o => o.Choice))
        {
            var item = work[outcome.Choice];
            w.WriteStartObject();
            w.WriteNumber("index", outcome.Choice);
            if (chat)
            {
                OpenAiWriter.WriteChatMessage(w, request.Role, (request.ChatEcho ?? "") + outcome.Text);
                OpenAiWriter.WriteLogprobs(w, request.TopLogprobs is { } top ? new LogprobsWriter(true, outcome.TokenIds, top, item.LogprobSeed, 0, 0) : null);
            }
            else
            {
                var prefix = request.EchoPrompt ? PromptText(item.Prompt) : "";
                w.WriteString("text", prefix + outcome.Text);
                OpenAiWriter.WriteLogprobs(w, request.TopLogprobs is not { } top ? null
                    : request.EchoPrompt ? new LogprobsWriter(false, [.. item.Prompt.Tokens, .. outcome.TokenIds], top, item.LogprobSeed, -item.Prompt.Tokens.Length, 0, firstHasNone: true)
                    : new LogprobsWriter(false, outcome.TokenIds, top, item.LogprobSeed, 0, 0));
            }
            OpenAiWriter.WriteFinishReason(w, outcome.FinishReason);
            OpenAiWriter.WriteStopReason(w, outcome.StopReason);
            if (!chat)
            {
                WritePromptLogprobs(w, request, item);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        var (prompt, completion, cached) = Usage(request, outcomes);
        OpenAiWriter.WriteResponseTail(w, chat, prompt, completion, cached,
            chat && request.PromptLogprobs is not null ? writer => WritePromptLogprobs(writer, request, work[0]) : null);
        w.WriteEndObject();
    }

    private static void WritePromptLogprobs(Utf8JsonWriter w, GenerationRequest request, Work item)
    {
        if (request.PromptLogprobs is { } top)
        {
            LogprobsWriter.WritePromptLogprobs(w, item.Prompt.Tokens, top, item.LogprobSeed);
        }
        else
        {
            w.WriteNull("prompt_logprobs");
        }
    }

    /// <summary>Prompt tokens count once per prompt however many choices it has; cached tokens only when asked for.</summary>
    private (int Prompt, int Completion, int? Cached) Usage(GenerationRequest request, SequenceOutcome[] outcomes)
    {
        var prompt = request.Prompts.Sum(p => p.Tokens.Length);
        var completion = outcomes.Sum(o => o.CompletionTokens);
        // vLLM reports the cached tokens of the request, and only when there are some.
        int? cached = options.EnablePromptTokensDetails
            ? outcomes.Where(o => o.Choice % request.N == 0).Sum(o => o.CachedTokens)
            : null;
        return (prompt, completion, cached);
    }

    /// <summary>vLLM's <c>_base_request_id</c>: the client's <c>X-Request-Id</c> when it sends one, else a random hex id.</summary>
    private static string RequestId(HttpContext context, GenerationKind kind)
    {
        var prefix = kind == GenerationKind.Chat ? "chatcmpl-" : "cmpl-";
        return context.Request.Headers.TryGetValue(RequestIdHeader, out var given) && given.ToString() is { Length: > 0 } id
            ? prefix + id
            : prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
    }
}
