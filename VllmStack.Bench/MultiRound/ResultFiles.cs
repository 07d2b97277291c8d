using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace VllmStack.Bench.MultiRound;

/// <summary>
/// The files of one run in the output folder: <c>multiround-STAMP.json</c> (settings, summary and every request),
/// <c>multiround-STAMP-summary.csv</c> (one row, to paste beside other runs) and <c>multiround-STAMP-requests.csv</c>.
/// </summary>
public static class ResultFiles
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public sealed record Report(string Scenario, DateTimeOffset At, string Model, MultiRoundSettings Settings, RunSummary Summary, IReadOnlyList<RequestRecord> Requests);

    public static async Task<IReadOnlyList<string>> WriteAsync(MultiRoundSettings settings, string model, RunResult run, RunSummary summary, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(settings.OutputDirectory);
        var stem = Path.Combine(settings.OutputDirectory, $"multiround-{run.StartedAt:yyyyMMdd-HHmmss}");
        var files = new[] { stem + ".json", stem + "-summary.csv", stem + "-requests.csv" };
        var report = new Report("multiround", run.StartedAt, model, settings, summary, run.Requests);
        await File.WriteAllTextAsync(files[0], JsonSerializer.Serialize(report, Json), cancellationToken);
        await File.WriteAllTextAsync(files[1], SummaryCsv(settings, model, run, summary), cancellationToken);
        await File.WriteAllTextAsync(files[2], RequestsCsv(run), cancellationToken);
        return files;
    }

    public static string SummaryCsv(MultiRoundSettings settings, string model, RunResult run, RunSummary s)
    {
        var columns = new (string Name, object? Value)[]
        {
            ("started_at", run.StartedAt.ToString("O", CultureInfo.InvariantCulture)), ("url", settings.Url), ("model", model),
            ("users", settings.Users), ("rounds", settings.Rounds), ("system_prompt_tokens", settings.SystemPromptTokens),
            ("history_tokens", settings.HistoryTokens), ("question_tokens", settings.QuestionTokens), ("answer_tokens", settings.AnswerTokens),
            ("qps", settings.Qps), ("duration_s", settings.Duration.TotalSeconds), ("seed", settings.Seed),
            ("elapsed_s", s.ElapsedSeconds), ("requests", s.Requests), ("errors", s.Errors), ("error_rate", s.ErrorRate),
            ("ttft_mean_ms", s.TtftMs.Mean), ("ttft_p50_ms", s.TtftMs.P50), ("ttft_p90_ms", s.TtftMs.P90), ("ttft_p99_ms", s.TtftMs.P99),
            ("itl_mean_ms", s.ItlMs.Mean), ("itl_p50_ms", s.ItlMs.P50), ("itl_p90_ms", s.ItlMs.P90), ("itl_p99_ms", s.ItlMs.P99),
            ("e2e_mean_ms", s.E2eMs.Mean), ("e2e_p50_ms", s.E2eMs.P50), ("e2e_p99_ms", s.E2eMs.P99),
            ("requests_per_s", s.RequestsPerSecond), ("output_tokens_per_s", s.OutputTokensPerSecond), ("prompt_tokens_per_s", s.PromptTokensPerSecond),
            ("prompt_tokens", s.PromptTokens), ("completion_tokens", s.CompletionTokens), ("cached_prompt_tokens", s.CachedPromptTokens),
            ("users_started", s.UsersStarted), ("conversations_completed", s.ConversationsCompleted),
        };
        return Row(columns.Select(c => c.Name)) + Row(columns.Select(c => Cell(c.Value)));
    }

    public static string RequestsCsv(RunResult run)
    {
        var csv = new StringBuilder(Row([
            "start_s", "user_id", "round", "ok", "error_kind", "http_status", "ttft_ms", "itl_mean_ms", "e2e_ms",
            "content_chunks", "prompt_tokens", "completion_tokens", "cached_prompt_tokens", "error",
        ]));
        foreach (var r in run.Requests)
        {
            csv.Append(Row([
                Cell((r.StartedAt - run.StartedAt).TotalSeconds), r.UserId, Cell(r.Round), r.Succeeded ? "true" : "false",
                r.Succeeded ? "" : r.ErrorKind.ToString(), Cell(r.HttpStatus), Cell(r.TtftMs), Cell(r.ItlMeanMs), Cell(r.E2eMs),
                Cell(r.ContentChunks), Cell(r.PromptTokens), Cell(r.CompletionTokens), Cell(r.CachedPromptTokens), r.Error ?? "",
            ]));
        }
        return csv.ToString();
    }

    private static string Cell(object? value) => value switch
    {
        null => "",
        double d => d.ToString("0.####", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>One RFC 4180 line: fields with a comma, quote or line break are quoted, quotes doubled.</summary>
    public static string Row(IEnumerable<string> fields) =>
        string.Join(',', fields.Select(f => f.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + f.Replace("\"", "\"\"") + "\"" : f)) + "\r\n";
}
