using System.Text;
using VllmStack.Redis;
using VllmStack.Redis.Protocol;

namespace VllmStack.Tests.Redis;

/// <summary>Connection strings, command encoding and the reply parser, without a server.</summary>
public sealed class RedisProtocolTests
{
    [Fact]
    public void Parse_reads_the_Aspire_and_StackExchange_forms()
    {
        var plain = RedisConnectionOptions.Parse("localhost:6380");
        Assert.Equal(("localhost", 6380, 0), (plain.Host, plain.Port, plain.Database));
        Assert.Null(plain.Password);
        Assert.Equal(TimeSpan.FromSeconds(2), plain.ConnectTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), plain.CommandTimeout);
        Assert.Equal(2, plain.Connections);

        var full = RedisConnectionOptions.Parse(" cache.internal:7000 , password=p=a , defaultDatabase=3,connectTimeout=500,syncTimeout=1500,abortConnect=false,ssl=false ");
        Assert.Equal("cache.internal", full.Host);
        Assert.Equal(7000, full.Port);
        Assert.Equal("p=a", full.Password); // only the first = separates key and value
        Assert.Equal(3, full.Database);
        Assert.Equal(TimeSpan.FromMilliseconds(500), full.ConnectTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), full.CommandTimeout);
        Assert.DoesNotContain("p=a", full.ToString(), StringComparison.Ordinal);

        Assert.Equal(6379, RedisConnectionOptions.Parse("redis").Port);
        var v6 = RedisConnectionOptions.Parse("[::1]:6390,user=app,password=x");
        Assert.Equal(("::1", 6390, "app"), (v6.Host, v6.Port, v6.User));
        Assert.Equal("[::1]:6390", v6.Endpoint);
    }

    [Theory]
    [InlineData("", "no host")]
    [InlineData("password=x", "no host")]
    [InlineData("host:notaport", "port 'notaport'")]
    [InlineData("host:70000", "between 1 and 65535")]
    [InlineData("a:1,b:2", "more than one endpoint")]
    [InlineData("host:1,defaultDatabase=-1", "defaultDatabase '-1'")]
    [InlineData("host:1,connectTimeout=soon", "connectTimeout (milliseconds) 'soon'")]
    [InlineData("host:1,syncTimeout=0", "syncTimeout (milliseconds) '0'")]
    [InlineData("host:1,ssl=true", "TLS is not supported")]
    [InlineData("host:1,colour=blue", "unknown option 'colour'")]
    [InlineData("::1:6379", "[address]:port")]
    [InlineData("[::1:6379", "without ']'")]
    public void Parse_rejects_bad_strings_with_a_message_that_says_what_is_wrong(string connectionString, string expected)
    {
        var error = Assert.Throws<FormatException>(() => RedisConnectionOptions.Parse(connectionString));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_never_echoes_a_password_in_errors()
    {
        var error = Assert.Throws<FormatException>(() => RedisConnectionOptions.Parse("host:1,password=hunter2,bogus=1"));
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
        Assert.Contains("password=*****", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_are_validated_by_the_client()
    {
        Assert.Throws<ArgumentException>(() => new RedisClient(new RedisConnectionOptions { Connections = 0 }));
        Assert.Throws<ArgumentException>(() => new RedisClient(new RedisConnectionOptions { CommandTimeout = TimeSpan.Zero }));
        Assert.Throws<ArgumentException>(() => new RedisClient(new RedisConnectionOptions { Port = 0 }));
    }

    [Fact]
    public void Commands_are_encoded_as_arrays_of_bulk_strings()
    {
        var command = new RedisCommand("SET", 4).Add("ключ").Add(new byte[] { 0, 13, 10 }).Add(-42L).Add(2.5).Complete();
        var bytes = command.Payload.AsSpan().ToArray();
        command.Release();
        var expected = "*5\r\n$3\r\nSET\r\n$8\r\nключ\r\n$3\r\n\0\r\n\r\n$3\r\n-42\r\n$3\r\n2.5\r\n";
        Assert.Equal(Encoding.UTF8.GetBytes(expected), bytes);

        var infinite = new RedisCommand("ZRANGEBYSCORE", 3).Add("z").Add(double.NegativeInfinity).Add(double.PositiveInfinity).Complete();
        Assert.EndsWith("$4\r\n-inf\r\n$4\r\n+inf\r\n", Encoding.ASCII.GetString(infinite.Payload));
        infinite.Release();
        infinite.Release(); // idempotent: the buffer goes back to the pool once

        Assert.Throws<InvalidOperationException>(() => new RedisCommand("GET", 1).Complete());
        Assert.Throws<InvalidOperationException>(() => new RedisCommand("PING", 0).Add("extra"));
        Assert.Throws<ArgumentException>(() => new RedisCommand("ZADD", 1).Add(double.NaN));
    }

    [Fact]
    public void A_large_argument_is_written_whole()
    {
        var value = new byte[3 << 20];
        new Random(7).NextBytes(value);
        var command = new RedisCommand("SET", 2).Add("k").Add(value).Complete();
        var payload = command.Payload;
        var header = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3145728\r\n"u8;
        Assert.True(payload.AsSpan(0, header.Length).SequenceEqual(header));
        Assert.True(payload.AsSpan(header.Length, value.Length).SequenceEqual(value));
        Assert.Equal(header.Length + value.Length + 2, payload.Count);
        command.Release();
    }

    [Fact]
    public void Parser_handles_every_reply_type_fed_one_byte_at_a_time()
    {
        const string stream =
            "+OK\r\n-ERR bad thing\r\n:-7\r\n$5\r\nhe\r\no\r\n$-1\r\n*-1\r\n*0\r\n$0\r\n\r\n" +
            "*3\r\n:1\r\n*2\r\n$1\r\na\r\n-WRONGTYPE x\r\n$-1\r\n+PONG\r\n";
        var replies = ParseInPieces(Encoding.ASCII.GetBytes(stream), pieceSize: 1);
        Assert.Equal(10, replies.Count);
        Assert.Equal("OK", replies[0].Text);
        Assert.True(replies[1].IsError);
        Assert.Equal("ERR bad thing", replies[1].Text);
        Assert.Equal(-7, replies[2].Integer);
        Assert.Equal("he\r\no", Encoding.ASCII.GetString(replies[3].Bytes!));
        Assert.True(replies[4].IsNull);
        Assert.Equal(RedisReplyKind.BulkString, replies[4].Kind);
        Assert.True(replies[5].IsNull);
        Assert.Equal(RedisReplyKind.Array, replies[5].Kind);
        Assert.Empty(replies[6].Elements!);
        Assert.Empty(replies[7].Bytes!);
        var nested = replies[8].Elements!;
        Assert.Equal(1, nested[0].Integer);
        Assert.Equal("a", nested[1].Elements![0].AsString());
        Assert.Equal("WRONGTYPE x", nested[1].Elements![1].Text);
        Assert.True(nested[2].IsNull);
        Assert.Equal("PONG", replies[9].Text);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    [InlineData(1 << 20)]
    public void Parser_fills_a_large_bulk_string_into_one_array_of_its_exact_length(int pieceSize)
    {
        var value = new byte[(2 << 20) + 3];
        new Random(pieceSize).NextBytes(value);
        var header = Encoding.ASCII.GetBytes($"*2\r\n${value.Length}\r\n");
        var stream = header.Concat(value).Concat("\r\n:5\r\n"u8.ToArray()).ToArray();
        var reply = Assert.Single(ParseInPieces(stream, pieceSize == 1 ? 997 : pieceSize));
        var bytes = reply.Elements![0].Bytes!;
        Assert.Equal(value.Length, bytes.Length);
        Assert.True(value.AsSpan().SequenceEqual(bytes));
        Assert.Equal(5, reply.Elements[1].Integer);
    }

    [Fact]
    public void Parser_can_take_bulk_data_received_straight_into_its_array()
    {
        var parser = new RespParser();
        Assert.False(parser.TryParse("$6\r\nab"u8, out var consumed, out _));
        Assert.Equal(6, consumed);
        Assert.True(parser.IsAwaitingBulkData);
        "cdef"u8.CopyTo(parser.BulkDestination.Span);
        parser.BulkDataReceived(4);
        Assert.False(parser.IsAwaitingBulkData);
        Assert.False(parser.TryParse("\r"u8, out consumed, out _));
        Assert.Equal(0, consumed); // a lone CR waits for its LF
        Assert.True(parser.TryParse("\r\n"u8, out consumed, out var reply));
        Assert.Equal(2, consumed);
        Assert.Equal("abcdef", reply.AsString());
    }

    [Theory]
    [InlineData("?what\r\n", "unknown reply type")]
    [InlineData(":12x\r\n", "not a number")]
    [InlineData("$-5\r\n", "outside")]
    [InlineData("$3\r\nabcXY", "not followed by CRLF")]
    [InlineData("+OK\n", "CRLF")]
    public void Parser_rejects_what_is_not_RESP2(string input, string expected)
    {
        var error = Assert.Throws<RespProtocolException>(() => new RespParser().TryParse(Encoding.ASCII.GetBytes(input), out _, out _));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parser_rejects_an_endless_line()
    {
        var junk = Enumerable.Repeat((byte)'+', RespParser.MaxLineLength + 1).ToArray();
        Assert.Throws<RespProtocolException>(() => new RespParser().TryParse(junk, out _, out _));
    }

    /// <summary>Feeds the stream in pieces the way a socket might deliver it, keeping unconsumed bytes for the next round.</summary>
    private static List<RedisReply> ParseInPieces(byte[] stream, int pieceSize)
    {
        var parser = new RespParser();
        var replies = new List<RedisReply>();
        var pending = new List<byte>();
        for (var offset = 0; offset < stream.Length; offset += pieceSize)
        {
            pending.AddRange(stream.AsSpan(offset, Math.Min(pieceSize, stream.Length - offset)));
            var data = pending.ToArray();
            var start = 0;
            while (true)
            {
                var complete = parser.TryParse(data.AsSpan(start), out var consumed, out var reply);
                start += consumed;
                if (!complete)
                {
                    break;
                }
                replies.Add(reply!);
            }
            pending.RemoveRange(0, start);
        }
        Assert.Empty(pending);
        return replies;
    }
}
