using System.Globalization;
using System.Text;

namespace VllmStack.Bench.MultiRound;

/// <summary>The end-of-run table printed to the console.</summary>
public static class SummaryTable
{
    public static string Format(MultiRoundSettings settings, string model, RunSummary s)
    {
        var t = new StringBuilder();
        void Line(FormattableString text) => t.AppendLine(text.ToString(CultureInfo.InvariantCulture));
        static string Ms(Distribution d, double value) => d.Count == 0 ? "-" : value.ToString("F2", CultureInfo.InvariantCulture);

        var rate = settings.Qps > 0 ? $"{settings.Qps:0.###} req/s target" : "no pacing";
        Line($"multi-round QA against {settings.Url} ({model}): {settings.Users} users × {settings.Rounds} rounds, {rate}, {s.ElapsedSeconds:F1} s");
        Line($"  prompt = {settings.SystemPromptTokens} shared + {settings.HistoryTokens} per user + {settings.QuestionTokens} per question (+ history); answers {settings.AnswerTokens} tokens");
        t.AppendLine();
        Line($"{"requests",-22}{s.Requests,10}   users {s.UsersStarted}, conversations completed {s.ConversationsCompleted}{(s.Abandoned > 0 ? $", abandoned {s.Abandoned}" : "")}");
        var kinds = s.ErrorsByKind.Count > 0 ? "   " + string.Join(", ", s.ErrorsByKind.Select(k => $"{k.Key} {k.Value}")) : "";
        Line($"{"errors",-22}{s.Errors,10}   {s.ErrorRate * 100:F2} %{kinds}");
        Line($"{"",-22}{"mean",10}{"p50",10}{"p90",10}{"p99",10}{"max",10}");
        foreach (var (name, d) in new[] { ("TTFT (ms)", s.TtftMs), ("ITL (ms)", s.ItlMs), ("E2E latency (ms)", s.E2eMs) })
        {
            Line($"{name,-22}{Ms(d, d.Mean),10}{Ms(d, d.P50),10}{Ms(d, d.P90),10}{Ms(d, d.P99),10}{Ms(d, d.Max),10}");
        }
        Line($"{"request throughput",-22}{s.RequestsPerSecond,10:F2}   req/s");
        Line($"{"output throughput",-22}{s.OutputTokensPerSecond,10:F1}   tok/s ({s.CompletionTokens} tokens)");
        var cached = s.CachedPromptShare is { } share ? $", {share * 100:F1} % served from the prefix cache" : "";
        Line($"{"prompt throughput",-22}{s.PromptTokensPerSecond,10:F1}   tok/s ({s.PromptTokens} tokens{cached})");
        if (s.Rounds.Count > 0)
        {
            t.AppendLine();
            Line($"{"round",-8}{"requests",10}{"errors",8}{"prompt tok",12}{"cached tok",12}{"TTFT p50",10}{"TTFT p90",10}");
            foreach (var r in s.Rounds)
            {
                var cachedTokens = r.MeanCachedPromptTokens is { } c ? c.ToString("F0", CultureInfo.InvariantCulture) : "-";
                Line($"{r.Round,-8}{r.Requests,10}{r.Errors,8}{r.MeanPromptTokens,12:F0}{cachedTokens,12}{Ms(r.TtftMs, r.TtftMs.P50),10}{Ms(r.TtftMs, r.TtftMs.P90),10}");
            }
        }
        return t.ToString();
    }
}
