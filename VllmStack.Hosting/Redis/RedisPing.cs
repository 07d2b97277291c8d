using System.Net.Sockets;
using System.Text;

namespace VllmStack.Hosting.Redis;

/// <summary>
/// The smallest RESP exchange that proves a Redis-compatible server serves: <c>AUTH</c> (when a password is set),
/// then <c>PING</c>, expecting <c>+PONG</c>. Used as the resource's health check.
/// </summary>
public static class RedisPing
{
    // A status reply is short; anything longer is not what we asked for.
    private const int MaxReplyLength = 512;

    /// <summary>True when the server at 127.0.0.1:<paramref name="port"/> answers PING with PONG; the token bounds the whole exchange.</summary>
    public static async Task<bool> PingAsync(int port, string? password, CancellationToken cancellationToken)
    {
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync("127.0.0.1", port, cancellationToken).ConfigureAwait(false);
        var stream = client.GetStream();

        var request = new StringBuilder();
        if (password is not null)
        {
            AppendCommand(request, "AUTH", password);
        }
        AppendCommand(request, "PING");
        await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToString()), cancellationToken).ConfigureAwait(false);

        if (password is not null && await ReadLineAsync(stream, cancellationToken).ConfigureAwait(false) != "+OK")
        {
            return false;
        }
        return await ReadLineAsync(stream, cancellationToken).ConfigureAwait(false) == "+PONG";
    }

    /// <summary>A command as a RESP array of bulk strings (lengths in bytes, so any password is safe).</summary>
    private static void AppendCommand(StringBuilder request, params string[] parts)
    {
        request.Append('*').Append(parts.Length).Append("\r\n");
        foreach (var part in parts)
        {
            request.Append('$').Append(Encoding.UTF8.GetByteCount(part)).Append("\r\n").Append(part).Append("\r\n");
        }
    }

    /// <summary>One reply line without its CRLF; null when the server closes first or the line is too long.</summary>
    private static async Task<string?> ReadLineAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var line = new byte[MaxReplyLength];
        for (var length = 0; length < line.Length; length++)
        {
            if (await stream.ReadAsync(line.AsMemory(length, 1), cancellationToken).ConfigureAwait(false) == 0)
            {
                return null;
            }
            if (line[length] == '\n' && length > 0 && line[length - 1] == '\r')
            {
                return Encoding.UTF8.GetString(line, 0, length - 1);
            }
        }
        return null;
    }
}
