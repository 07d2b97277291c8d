using System.Text;
using System.Text.Json;
using VllmStack.EngineSim.Generation;
using VllmStack.EngineSim.Tokenization;
using VllmStack.ServiceDefaults.Hashing;

namespace VllmStack.EngineSim.Api;

/// <summary>
/// Log probabilities for tokens, deterministic per request seed and position, in vLLM's shapes: chat's
/// <c>{"content":[{"token","logprob","bytes","top_logprobs":[…]}]}</c> and completions'
/// <c>{"text_offset","token_logprobs","tokens","top_logprobs":[{token: logprob}]}</c>. The chosen token is always the
/// most likely (rank 1); its alternatives are common words, each less likely than the one before. A simulation has
/// no distribution to report, so the values are plausible, stable and internally consistent, not meaningful.
/// </summary>
internal sealed class LogprobsWriter(bool chat, IReadOnlyList<int> tokens, int top, ulong seed, int firstPosition, int textOffset, bool firstHasNone = false)
{
    /// <summary>The logprob, rank-1 alternatives and their logprobs of the token at <paramref name="position"/>.</summary>
    public static (double Logprob, IReadOnlyList<(int Token, double Logprob)> Alternatives) At(ulong seed, int position, int token, int alternatives)
    {
        var state = KvBlockHashes.Block(seed ^ 0x10C9, [position, token]);
        double Next()
        {
            state = state * 6364136223846793005UL + 1442695040888963407UL;
            return (state >> 11) * (1.0 / (1UL << 53));
        }
        var logprob = -Math.Round(0.005 + 0.6 * Next(), 6);
        var result = new List<(int, double)>(alternatives);
        var current = logprob;
        var used = new HashSet<int> { token };
        while (result.Count < alternatives)
        {
            var word = WordList.Words[(int)(Next() * WordList.Words.Length)];
            var id = SimTokenizer.Encode(" " + word)[0];
            if (!used.Add(id))
            {
                continue;
            }
            current = Math.Round(current - 0.3 - 2.5 * Next(), 6);
            result.Add((id, current));
        }
        return (logprob, result);
    }

    public void Write(Utf8JsonWriter w)
    {
        if (chat)
        {
            WriteChat(w);
        }
        else
        {
            WriteCompletion(w);
        }
    }

    private void WriteChat(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteStartArray("content");
        for (var i = 0; i < tokens.Count; i++)
        {
            var (logprob, alternatives) = At(seed, firstPosition + i, tokens[i], Math.Max(0, top - 1));
            w.WriteStartObject();
            WriteToken(w, tokens[i], logprob);
            w.WriteStartArray("top_logprobs");
            if (top > 0)
            {
                w.WriteStartObject();
                WriteToken(w, tokens[i], logprob);
                w.WriteEndObject();
                foreach (var (alternative, p) in alternatives)
                {
                    w.WriteStartObject();
                    WriteToken(w, alternative, p);
                    w.WriteEndObject();
                }
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteToken(Utf8JsonWriter w, int token, double logprob)
    {
        var text = SimTokenizer.Decode([token]);
        w.WriteString("token", text);
        w.WriteNumber("logprob", logprob);
        w.WriteStartArray("bytes");
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            w.WriteNumberValue(b);
        }
        w.WriteEndArray();
    }

    private void WriteCompletion(Utf8JsonWriter w)
    {
        var texts = tokens.Select(t => SimTokenizer.Decode([t])).ToList();
        w.WriteStartObject();
        w.WriteStartArray("text_offset");
        var offset = textOffset;
        foreach (var text in texts)
        {
            w.WriteNumberValue(offset);
            offset += text.Length;
        }
        w.WriteEndArray();
        var steps = tokens.Select((t, i) => firstHasNone && i == 0 ? default : At(seed, firstPosition + i, t, Math.Max(0, top - 1))).ToList();
        w.WriteStartArray("token_logprobs");
        for (var i = 0; i < tokens.Count; i++)
        {
            if (firstHasNone && i == 0)
            {
                w.WriteNullValue();
            }
            else
            {
                w.WriteNumberValue(steps[i].Logprob);
            }
        }
        w.WriteEndArray();
        w.WriteStartArray("tokens");
        foreach (var text in texts)
        {
            w.WriteStringValue(text);
        }
        w.WriteEndArray();
        w.WriteStartArray("top_logprobs");
        for (var i = 0; i < tokens.Count; i++)
        {
            if (firstHasNone && i == 0)
            {
                w.WriteNullValue();
                continue;
            }
            // OpenAI's completions list up to logprobs + 1 entries; with the chosen token ranked first that is at most `top`.
            w.WriteStartObject();
            w.WriteNumber(texts[i], steps[i].Logprob);
            foreach (var (alternative, p) in steps[i].Alternatives)
            {
                var text = SimTokenizer.Decode([alternative]);
                if (text != texts[i])
                {
                    w.WriteNumber(text, p);
                }
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>
    /// vLLM's <c>prompt_logprobs</c>: per prompt token <c>{token_id: {"logprob", "rank", "decoded_token"}}</c> with the prompt
    /// token and its <paramref name="top"/> alternatives; the first token has none (null).
    /// </summary>
    public static void WritePromptLogprobs(Utf8JsonWriter w, IReadOnlyList<int> prompt, int top, ulong seed)
    {
        w.WriteStartArray("prompt_logprobs");
        for (var i = 0; i < prompt.Count; i++)
        {
            if (i == 0)
            {
                w.WriteNullValue();
                continue;
            }
            var (logprob, alternatives) = At(seed, -i, prompt[i], top);
            w.WriteStartObject();
            WritePromptEntry(w, prompt[i], logprob, 1);
            var rank = 2;
            foreach (var (alternative, p) in alternatives.Take(top))
            {
                if (alternative != prompt[i])
                {
                    WritePromptEntry(w, alternative, p, rank++);
                }
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static void WritePromptEntry(Utf8JsonWriter w, int token, double logprob, int rank)
    {
        w.WriteStartObject(token.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.WriteNumber("logprob", logprob);
        w.WriteNumber("rank", rank);
        w.WriteString("decoded_token", SimTokenizer.Decode([token]));
        w.WriteEndObject();
    }
}
