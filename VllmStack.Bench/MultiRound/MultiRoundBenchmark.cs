using System.Globalization;

namespace VllmStack.Bench.MultiRound;

/// <summary>
/// One multi-round QA run from settings to files: resolves the model, runs the load with a progress line, prints
/// the table, writes the results and returns the exit code (0 good, 1 too many errors, 2 could not run,
/// 130 interrupted).
/// </summary>
public static class MultiRoundBenchmark
{
    public const int Passed = 0;
    public const int TooManyErrors = 1;
    public const int CouldNotRun = 2;
    public const int Interrupted = 130;

    public static async Task<int> RunAsync(MultiRoundSettings settings, TextWriter output, TextWriter error, bool interactive, CancellationToken cancellationToken)
    {
        var problems = settings.Validate().ToArray();
        if (problems.Length > 0)
        {
            foreach (var problem in problems)
            {
                await error.WriteLineAsync(problem);
            }
            return CouldNotRun;
        }

        var endpoint = new ChatEndpoint(settings.Url, settings.Model ?? "", settings.ApiKey, settings.SessionHeader, settings.AnswerTokens, settings.RequestTimeout);
        if (string.IsNullOrEmpty(settings.Model))
        {
            try
            {
                endpoint = endpoint with { Model = await OpenAiChatClient.FirstModelAsync(endpoint, cancellationToken) };
            }
            catch (Exception e) when ((e is HttpRequestException or OperationCanceledException or System.Text.Json.JsonException) && !cancellationToken.IsCancellationRequested)
            {
                await error.WriteLineAsync($"Cannot list the models at {endpoint.ModelsUrl} (give --model to skip this): {e.Message}");
                return CouldNotRun;
            }
        }

        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"multiround: {settings.Users} users × {settings.Rounds} rounds against {endpoint.ChatCompletionsUrl} ({endpoint.Model}) for {settings.Duration.TotalSeconds:0.#} s"));
        using var client = new OpenAiChatClient(endpoint);
        var runner = new MultiRoundRunner(settings, client);
        using var stopProgress = new CancellationTokenSource();
        var progress = new ProgressDisplay(runner.Counters, output, interactive, settings.Duration).RunAsync(stopProgress.Token);
        RunResult run;
        try
        {
            run = await runner.RunAsync(cancellationToken);
        }
        finally
        {
            await stopProgress.CancelAsync();
            await progress;
        }

        var summary = RunSummary.Of(run);
        await output.WriteLineAsync();
        await output.WriteAsync(SummaryTable.Format(settings, endpoint.Model, summary));
        // Written even after Ctrl+C: a cut-short run's figures are still worth keeping.
        var files = await ResultFiles.WriteAsync(settings, endpoint.Model, run, summary, CancellationToken.None);
        foreach (var file in files)
        {
            await output.WriteLineAsync("written: " + file);
        }
        if (run.Interrupted)
        {
            // A cut-short run is no verdict either way; 130 is the shell's code for Ctrl+C.
            await error.WriteLineAsync("Interrupted before the duration was up.");
            return Interrupted;
        }
        if (summary.Passes(settings.MaxErrorRate))
        {
            return Passed;
        }
        await error.WriteLineAsync(summary.Succeeded == 0
            ? "No request succeeded."
            : string.Create(CultureInfo.InvariantCulture, $"Error rate {summary.ErrorRate:P2} exceeds --max-error-rate {settings.MaxErrorRate:P2}."));
        return TooManyErrors;
    }
}
