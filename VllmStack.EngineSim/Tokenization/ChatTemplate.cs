using System.Text;

namespace VllmStack.EngineSim.Tokenization;

public sealed record ChatMessage(string Role, string Content);

/// <summary>A Llama-3-style chat template, so that chat prompts carry realistic per-message token overhead.</summary>
public static class ChatTemplate
{
    /// <param name="addGenerationPrompt">Open an assistant turn after the messages (vLLM's <c>add_generation_prompt</c>).</param>
    /// <param name="continueFinalMessage">
    /// Leave the last message open, without its end-of-turn, so that the model continues it (vLLM's
    /// <c>continue_final_message</c>, used to "prefill" part of an answer).
    /// </param>
    /// <param name="toolsJson">The request's <c>tools</c> as JSON, rendered into a system header as Llama 3.1's template does.</param>
    public static string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, bool continueFinalMessage = false, string? toolsJson = null)
    {
        var sb = new StringBuilder(SimTokenizer.BeginOfText);
        if (toolsJson is not null)
        {
            sb.Append(SimTokenizer.StartHeader).Append("system").Append(SimTokenizer.EndHeader).Append("\n\n")
              .Append("Environment: ipython\nYou may call these functions:\n").Append(toolsJson).Append(SimTokenizer.EndOfTurn);
        }
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            sb.Append(SimTokenizer.StartHeader).Append(message.Role).Append(SimTokenizer.EndHeader).Append("\n\n").Append(message.Content);
            if (!(continueFinalMessage && i == messages.Count - 1))
            {
                sb.Append(SimTokenizer.EndOfTurn);
            }
        }
        if (addGenerationPrompt)
        {
            sb.Append(SimTokenizer.StartHeader).Append("assistant").Append(SimTokenizer.EndHeader).Append("\n\n");
        }
        return sb.ToString();
    }
}
