using System.Text;

namespace VllmStack.EngineSim.Tokenization;

public sealed record ChatMessage(string Role, string Content);

/// <summary>A Llama-3-style chat template, so that chat prompts carry realistic per-message token overhead.</summary>
public static class ChatTemplate
{
    public static string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true)
    {
        var sb = new StringBuilder(SimTokenizer.BeginOfText);
        foreach (var message in messages)
        {
            sb.Append(SimTokenizer.StartHeader).Append(message.Role).Append(SimTokenizer.EndHeader).Append("\n\n")
              .Append(message.Content).Append(SimTokenizer.EndOfTurn);
        }
        if (addGenerationPrompt)
        {
            sb.Append(SimTokenizer.StartHeader).Append("assistant").Append(SimTokenizer.EndHeader).Append("\n\n");
        }
        return sb.ToString();
    }
}
