using System.Net;
using System.Text;
using VllmStack.Router.Api;

namespace VllmStack.Tests.Router;

/// <summary>
/// One malformed or hostile request. <paramref name="Expected"/> is the exact status when it is certain, else any 4xx;
/// <paramref name="FromKestrel"/> marks rejections Kestrel makes itself (no OpenAI-style body).
/// </summary>
public sealed record BadRequest(string Name, HttpMethod Method, string Path, byte[]? Body, string? ContentType, int? Expected = null,
    (string Name, string Value)[]? Headers = null, bool Chunked = false, bool FromKestrel = false)
{
    public HttpRequestMessage ToMessage()
    {
        var message = new HttpRequestMessage(Method, Path.TrimStart('/'));
        if (Body is not null)
        {
            HttpContent content = Chunked ? new ChunkedContent(Body) : new ByteArrayContent(Body);
            if (ContentType is not null)
            {
                content.Headers.TryAddWithoutValidation("Content-Type", ContentType);
            }
            message.Content = content;
        }
        foreach (var (name, value) in Headers ?? [])
        {
            if (!message.Headers.TryAddWithoutValidation(name, value))
            {
                message.Content?.Headers.TryAddWithoutValidation(name, value);
            }
        }
        return message;
    }

    public override string ToString() => $"{Name} ({Method} {Path})";
}

/// <summary>A body sent chunked: no Content-Length, so the router learns its size only by reading it.</summary>
public sealed class ChunkedContent(byte[] body) : HttpContent
{
    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(body).AsTask();

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}

/// <summary>
/// Over two hundred requests a router meets from real clients and hostile ones: broken encodings, bodies that are not
/// one JSON object, wrong types and sizes, wrong methods and paths, broken uploads, and requests that are well-formed
/// but that the engine itself refuses. None of them may cost an engine its health.
/// </summary>
public static class BadRequestCorpus
{
    public const string Boundary = "vllmstack-corpus-boundary";

    public static IReadOnlyList<BadRequest> Build(string model, int bodyLimit)
    {
        var cases = new List<BadRequest>();
        var json = "application/json";
        var jsonRoutes = ForwardedRoutes.All.Where(r => r.Body == RequestBodyKind.Json).Select(r => r.Path).ToList();
        byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
        byte[] WithBytes(string before, byte[] middle, string after) => [.. Utf8(before), .. middle, .. Utf8(after)];

        // Every JSON route refuses the same mistakes before any engine sees them.
        foreach (var path in jsonRoutes)
        {
            cases.Add(new("invalid UTF-8 in a string", HttpMethod.Post, path, WithBytes($"{{\"model\":\"{model}\",\"prompt\":\"", [0xFF, 0xFE], "\"}"), json, 400));
            cases.Add(new("truncated JSON", HttpMethod.Post, path, Utf8($$"""{"model":"{{model}}","prompt":"x" """), json, 400));
            cases.Add(new("a JSON array", HttpMethod.Post, path, Utf8("[1,2,3]"), json, 400));
            cases.Add(new("text/plain", HttpMethod.Post, path, Utf8($$"""{"model":"{{model}}"}"""), "text/plain", 415));
            cases.Add(new("empty body", HttpMethod.Post, path, [], json, 400));
            cases.Add(new("model as a number", HttpMethod.Post, path, Utf8("""{"model":7,"prompt":"x"}"""), json, 400));
            cases.Add(new("model too long", HttpMethod.Post, path, Utf8($$"""{"model":"{{new string('m', 5000)}}"}"""), json, 400));
        }

        // Wrong methods on forwarded routes, and on the router's own.
        foreach (var path in new[] { "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/audio/transcriptions", "/tokenize", "/v1/rerank" })
        {
            foreach (var method in new[] { HttpMethod.Get, HttpMethod.Put, HttpMethod.Delete, HttpMethod.Patch })
            {
                cases.Add(new($"{method} on a POST route", method, path, method == HttpMethod.Get || method == HttpMethod.Delete ? null : Utf8("{}"), json, 405));
            }
        }
        cases.Add(new("POST on /v1/models", HttpMethod.Post, "/v1/models", Utf8("{}"), json, 405));
        cases.Add(new("DELETE on /engines", HttpMethod.Delete, "/engines", null, null, 405));

        // Paths no engine serves.
        foreach (var path in new[] { "/v1/chat/completion", "/v1/chat/completions/extra", "/v3/models", "/v1/engines", "/admin", "/v1/audio/speech",
                     "/v1/responses/resp-123", "/v1/responses/resp-123/cancel", "/%2e%2e/%2e%2e/etc/passwd", "/v1/load_lora_adapter", "/sleep", "/v1//completions" })
        {
            cases.Add(new("unknown path", HttpMethod.Post, path, Utf8($$"""{"model":"{{model}}"}"""), json, 404));
        }

        // One route, many ways of not being one UTF-8 JSON object.
        const string chat = "/v1/chat/completions";
        var messages = """[{"role":"user","content":"hi"}]""";
        foreach (var (name, body) in new (string, string)[]
                 {
                     ("trailing garbage", $$"""{"model":"{{model}}","messages":{{messages}}} x"""),
                     ("two objects", $$"""{"model":"{{model}}"}{"model":"{{model}}"}"""),
                     ("a comment", $$"""{"model":"{{model}}", /* hi */ "messages":{{messages}}}"""),
                     ("a trailing comma", $$"""{"model":"{{model}}","messages":{{messages}},}"""),
                     ("NaN", $$"""{"model":"{{model}}","temperature":NaN}"""),
                     ("single quotes", $$"""{'model':'{{model}}'}"""),
                     ("unquoted keys", $$"""{model:"{{model}}"}"""),
                     ("an escaped lone surrogate in the model", """{"model":"\udc00"}"""),
                     ("an escaped lone surrogate in a message", $$"""{"model":"{{model}}","messages":[{"role":"user","content":"\ud800"}]}"""),
                     ("an escaped lone surrogate in a content part", $$"""{"model":"{{model}}","messages":[{"role":"user","content":[{"type":"text","text":"a\udfffb"}]}]}"""),
                     ("an escaped lone surrogate in a key", $$"""{"model":"{{model}}","\ud801":1,"messages":{{messages}}}"""),
                     ("an escaped lone surrogate in a stop string", $$"""{"model":"{{model}}","messages":{{messages}},"stop":["\ud834"]}"""),
                     ("nesting 300 deep", $$"""{"model":"{{model}}","x":{{new string('[', 300)}}{{new string(']', 300)}}}"""),
                     ("null", "null"),
                     ("true", "true"),
                     ("a string", "\"hello\""),
                     ("a number", "42"),
                     ("whitespace only", "   \n\t "),
                     ("an empty model", """{"model":"","messages":[]}"""),
                     ("model as an object", """{"model":{"id":"x"}}"""),
                     ("model as an array", """{"model":["x"]}"""),
                     ("model as a boolean", """{"model":true}"""),
                     ("an unterminated string", $$"""{"model":"{{model}}","messages":"abc"""),
                     ("a control character in a string", $"{{\"model\":\"{model}\",\"x\":\"a\u0001b\"}}"),
                     ("an invalid escape", $$"""{"model":"{{model}}","x":"\q"}"""),
                     ("a bare value after a key", $$"""{"model":"{{model}}","x":}"""),
                     ("a missing colon", $$"""{"model" "{{model}}"}"""),
                     ("a leading BOM", "\uFEFF" + $$"""{"model":"{{model}}"}"""),
                 })
        {
            cases.Add(new(name, HttpMethod.Post, chat, Utf8(body), json, 400));
        }
        cases.Add(new("an unknown model", HttpMethod.Post, chat, Utf8($$"""{"model":"no-such-model","messages":{{messages}}}"""), json, 404));
        foreach (var (name, bytes) in new (string, byte[])[]
                 {
                     ("an overlong encoding", [0xC0, 0xAF]),
                     ("an encoded surrogate", [0xED, 0xA0, 0x80]),
                     ("a five-byte lead", [0xF8, 0x88, 0x80, 0x80, 0x80]),
                     ("a truncated sequence", [0xE2, 0x82]),
                     ("a lone continuation byte", [0x80]),
                     ("a code point above U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
                     ("Latin-1 text", [0x53, 0xE3, 0x6F]),
                 })
        {
            cases.Add(new($"invalid UTF-8: {name}", HttpMethod.Post, chat, WithBytes($"{{\"model\":\"{model}\",\"messages\":[{{\"role\":\"user\",\"content\":\"", bytes, "\"}]}"), json, 400));
        }
        foreach (var type in new[] { "application/xml", "application/x-www-form-urlencoded", $"multipart/form-data; boundary={Boundary}", "application/jsonx", "json", "text/json", "*/*" })
        {
            cases.Add(new($"Content-Type {type}", HttpMethod.Post, chat, Utf8($$"""{"model":"{{model}}","messages":{{messages}}}"""), type, 415));
        }
        cases.Add(new("no Content-Type", HttpMethod.Post, chat, Utf8($$"""{"model":"{{model}}","messages":{{messages}}}"""), null, 415));
        cases.Add(new("gzip Content-Encoding", HttpMethod.Post, chat, [0x1F, 0x8B, 0x08, 0x00], json, 415, [("Content-Encoding", "gzip")]));
        var big = Utf8($$"""{"model":"{{model}}","messages":[{"role":"user","content":"{{new string('x', bodyLimit * 2)}}"}]}""");
        cases.Add(new("a body over the limit", HttpMethod.Post, chat, big, json, 413));
        cases.Add(new("a chunked body over the limit", HttpMethod.Post, chat, big, json, 413, Chunked: true));
        cases.Add(new("a header block over Kestrel's limit", HttpMethod.Post, chat, Utf8("{}"), json, 431, [("x-padding", new string('p', 40_000))], FromKestrel: true));

        // Well-formed, and refused by the engine itself: relayed as the engine wrote them, never held against it.
        foreach (var (name, body) in new (string, string)[]
                 {
                     ("max_tokens as a word", $$"""{"model":"{{model}}","messages":{{messages}},"max_tokens":"many"}"""),
                     ("a negative temperature", $$"""{"model":"{{model}}","messages":{{messages}},"temperature":-1}"""),
                     ("messages as a string", $$"""{"model":"{{model}}","messages":"hi"}"""),
                     ("no messages", $$"""{"model":"{{model}}"}"""),
                     ("max_tokens past the context", $$"""{"model":"{{model}}","messages":{{messages}},"max_tokens":100000000}"""),
                     ("stop as a number", $$"""{"model":"{{model}}","messages":{{messages}},"stop":5}"""),
                     ("n of zero", $$"""{"model":"{{model}}","messages":{{messages}},"n":0}"""),
                     ("a message without a role", $$"""{"model":"{{model}}","messages":[{"content":"hi"}]}"""),
                     ("max_tokens of zero", $$"""{"model":"{{model}}","messages":{{messages}},"max_tokens":0}"""),
                     ("priority without priority scheduling", $$"""{"model":"{{model}}","messages":{{messages}},"priority":5}"""),
                     ("tools without auto tool choice", $$$"""{"model":"{{{model}}}","messages":{{{messages}}},"tools":[{"type":"function","function":{"name":"f"}}]}"""),
                 })
        {
            cases.Add(new($"engine refuses: {name}", HttpMethod.Post, chat, Utf8(body), json, 400));
        }
        cases.Add(new("engine refuses: a completion without a prompt", HttpMethod.Post, "/v1/completions", Utf8($$"""{"model":"{{model}}"}"""), json, 400));
        cases.Add(new("engine refuses: embeddings without input", HttpMethod.Post, "/v1/embeddings", Utf8($$"""{"model":"{{model}}"}"""), json, 400));

        // Uploads.
        const string audio = "/v1/audio/transcriptions";
        var multipart = $"multipart/form-data; boundary={Boundary}";
        cases.Add(new("an upload sent as JSON", HttpMethod.Post, audio, Utf8($$"""{"model":"{{model}}"}"""), json, 415));
        cases.Add(new("multipart without a boundary", HttpMethod.Post, audio, Multipart(model, [1, 2, 3]), "multipart/form-data", 400));
        cases.Add(new("a boundary of 80 characters", HttpMethod.Post, audio, Multipart(model, [1, 2, 3]), $"multipart/form-data; boundary={new string('b', 80)}", 400));
        cases.Add(new("a truncated upload", HttpMethod.Post, audio, Multipart(model, new byte[1000])[..600], multipart, 400));
        cases.Add(new("an upload that is not multipart", HttpMethod.Post, audio, Utf8("just some bytes, no parts at all"), multipart, 400));
        cases.Add(new("an upload with an empty model", HttpMethod.Post, audio, Multipart("", [1, 2, 3]), multipart, 400));
        cases.Add(new("an upload for an unknown model", HttpMethod.Post, audio, Multipart("no-such-model", [1, 2, 3]), multipart, 404));
        cases.Add(new("an upload without a file", HttpMethod.Post, audio, Multipart(model, null), multipart, 400));
        cases.Add(new("an upload whose model comes after too much audio", HttpMethod.Post, audio, Multipart(model, new byte[bodyLimit * 2], modelFirst: false), multipart, 413));
        cases.Add(new("an upload in gzip", HttpMethod.Post, audio, Multipart(model, [1]), multipart, 415, [("Content-Encoding", "gzip")]));
        return cases;
    }

    /// <summary>A transcription upload: a <c>model</c> field and (unless null) a <c>file</c> part, in the order given.</summary>
    public static byte[] Multipart(string model, byte[]? file, bool modelFirst = true, string boundary = Boundary)
    {
        var modelPart = Encoding.UTF8.GetBytes($"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{model}\r\n");
        byte[] filePart = file is null
            ? []
            : [.. Encoding.UTF8.GetBytes($"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"speech.wav\"\r\nContent-Type: audio/wav\r\n\r\n"),
                .. file, .. "\r\n"u8];
        byte[] end = Encoding.UTF8.GetBytes($"--{boundary}--\r\n");
        return modelFirst ? [.. modelPart, .. filePart, .. end] : [.. filePart, .. modelPart, .. end];
    }
}
