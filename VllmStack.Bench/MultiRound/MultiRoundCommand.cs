using System.CommandLine;
using System.Runtime.InteropServices;

namespace VllmStack.Bench.MultiRound;

/// <summary>The <c>multiround</c> subcommand: the command line of <see cref="MultiRoundBenchmark"/>.</summary>
public static class MultiRoundCommand
{
    public static Command Create()
    {
        var url = new Option<string>("--url") { DefaultValueFactory = _ => "http://127.0.0.1:8000", Description = "OpenAI-compatible base URL (an engine or the router), with or without /v1." };
        var model = new Option<string?>("--model") { Description = "Model to ask (default: the first that /v1/models lists)." };
        var users = new Option<int>("--users") { DefaultValueFactory = _ => 10, Description = "Concurrent simulated users." };
        var rounds = new Option<int>("--rounds") { DefaultValueFactory = _ => 5, Description = "Questions per user conversation; then a new user takes the place." };
        var systemPrompt = new Option<int>("--system-prompt-tokens") { DefaultValueFactory = _ => 1000, Description = "Tokens of the system prompt all users share." };
        var history = new Option<int>("--history-tokens") { DefaultValueFactory = _ => 2000, Description = "Tokens of each user's own document at the start of the conversation." };
        var question = new Option<int>("--question-tokens") { DefaultValueFactory = _ => 50, Description = "Tokens per question." };
        var answer = new Option<int>("--answer-tokens") { DefaultValueFactory = _ => 100, Description = "Tokens per answer (max_tokens with ignore_eos)." };
        var qps = new Option<double>("--qps") { DefaultValueFactory = _ => 2, Description = "Total request rate across users; 0: each user asks again as soon as answered." };
        var duration = new Option<double>("--duration") { DefaultValueFactory = _ => 60, Description = "Seconds of starting requests; in-flight ones are then waited for." };
        var sessionHeader = new Option<string>("--session-header") { DefaultValueFactory = _ => "x-user-id", Description = "Header carrying the user id, for session routing (empty: none)." };
        var apiKey = new Option<string?>("--api-key") { Description = "Bearer key for the server (not written to the results)." };
        var output = new Option<string>("--output") { DefaultValueFactory = _ => "bench-results", Description = "Folder for the JSON and CSV results." };
        var seed = new Option<int>("--seed") { DefaultValueFactory = _ => 0, Description = "Seed of the generated text: same seed, same prompts (an engine that served them before has them cached)." };
        var maxErrorRate = new Option<double>("--max-error-rate") { DefaultValueFactory = _ => 0.01, Description = "Exit with 1 when the share of failed requests is higher." };
        var requestTimeout = new Option<double>("--request-timeout") { DefaultValueFactory = _ => 120, Description = "Seconds one request may take, stream included." };

        var command = new Command("multiround", "The Production Stack's multi-round QA workload: users in chat conversations sharing a system prompt, streaming, at a target rate.")
        {
            url, model, users, rounds, systemPrompt, history, question, answer, qps, duration, sessionHeader, apiKey, output, seed, maxErrorRate, requestTimeout,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            var stdout = result.InvocationConfiguration.Output;
            var stderr = result.InvocationConfiguration.Error;
            if (!Uri.TryCreate(result.GetValue(url), UriKind.Absolute, out var baseUrl))
            {
                await stderr.WriteLineAsync($"--url '{result.GetValue(url)}' is not an absolute URL");
                return MultiRoundBenchmark.CouldNotRun;
            }
            var settings = new MultiRoundSettings(
                baseUrl, result.GetValue(model), result.GetValue(users), result.GetValue(rounds),
                result.GetValue(systemPrompt), result.GetValue(history), result.GetValue(question), result.GetValue(answer),
                result.GetValue(qps), Seconds(result.GetValue(duration)), result.GetValue(sessionHeader) ?? "", result.GetValue(apiKey),
                result.GetValue(seed), Seconds(result.GetValue(requestTimeout)), result.GetValue(maxErrorRate), result.GetValue(output)!);
            var interactive = ReferenceEquals(stdout, Console.Out) && !Console.IsOutputRedirected;
            // The first Ctrl+C ends the run early but still prints and writes what was measured; a second one
            // is left to terminate the process as usual.
            using var interrupted = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
            {
                if (!interrupted.IsCancellationRequested)
                {
                    context.Cancel = true;
                    interrupted.Cancel();
                }
            });
            return await MultiRoundBenchmark.RunAsync(settings, stdout, stderr, interactive, interrupted.Token);
        });
        return command;
    }

    // Out-of-range values become zero or negative spans, which the settings' validation reports.
    private static TimeSpan Seconds(double value) =>
        double.IsFinite(value) && Math.Abs(value) < TimeSpan.MaxValue.TotalSeconds / 2 ? TimeSpan.FromSeconds(value) : TimeSpan.Zero;
}
