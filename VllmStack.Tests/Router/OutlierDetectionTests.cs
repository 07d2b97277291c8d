using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using VllmStack.Router.Configuration;
using VllmStack.Router.Discovery;
using VllmStack.Router.Engines;
using VllmStack.Router.Forwarding;
using VllmStack.Router.Health;
using VllmStack.Router.Stats;

namespace VllmStack.Tests.Router;

/// <summary>Passive health as pure logic: which failures eject, the ejection ceiling, and panic routing.</summary>
public sealed class OutlierDetectionTests
{
    private const string Model = "m";

    private static (OutlierDetector Detector, IReadOnlyList<Engine> Engines) Create(int engines, Action<OutlierDetectionOptions>? configure = null)
    {
        var options = new RouterOptions();
        configure?.Invoke(options.OutlierDetection);
        var registry = new EngineRegistry([], options, NullLogger<EngineRegistry>.Instance);
        registry.Apply("test", Enumerable.Range(0, engines).Select(i => new Uri($"http://127.0.0.1:{9000 + i}/")).ToHashSet());
        foreach (var engine in registry.Engines)
        {
            engine.SetModels([Model]);
        }
        var metrics = new RouterMetrics(registry);
        return (new OutlierDetector(options, registry, metrics, NullLogger<OutlierDetector>.Instance), registry.Engines);
    }

    private static IReadOnlyList<Engine> Candidates(OutlierDetector detector, IReadOnlyList<Engine> engines, out bool panic) =>
        detector.Candidates(engines, new HashSet<int>(), DateTimeOffset.UtcNow, out panic);

    [Fact]
    public void A_gateway_failure_ejects_at_once_but_a_5xx_answer_only_after_a_streak()
    {
        var (detector, engines) = Create(4);
        detector.Failed(engines[0], Model, EngineFailureKind.ConnectFailure, "refused");
        Assert.True(engines[0].IsEjected(DateTimeOffset.UtcNow));

        for (var i = 0; i < 4; i++)
        {
            detector.Failed(engines[1], Model, EngineFailureKind.ServerErrorStatus, "status 500");
        }
        Assert.False(engines[1].IsEjected(DateTimeOffset.UtcNow));
        detector.Answered(engines[1]);
        for (var i = 0; i < 4; i++)
        {
            detector.Failed(engines[1], Model, EngineFailureKind.ServerErrorStatus, "status 500");
        }
        Assert.False(engines[1].IsEjected(DateTimeOffset.UtcNow));
        detector.Failed(engines[1], Model, EngineFailureKind.ServerErrorStatus, "status 500");
        Assert.True(engines[1].IsEjected(DateTimeOffset.UtcNow));
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(2, 1)]
    [InlineData(3, 1)]
    [InlineData(4, 2)]
    [InlineData(10, 5)]
    public void At_most_half_of_a_models_engines_are_ejected_and_never_the_last(int engines, int ejectable)
    {
        var (detector, all) = Create(engines);
        foreach (var engine in all)
        {
            detector.Failed(engine, Model, EngineFailureKind.ConnectFailure, "refused");
        }
        Assert.Equal(ejectable, all.Count(e => e.IsEjected(DateTimeOffset.UtcNow)));
        Assert.Equal(engines - ejectable, Candidates(detector, all, out var panic).Count);
        Assert.False(panic);
    }

    [Fact]
    public void When_ejections_leave_too_few_engines_requests_spread_over_all_that_pass_their_probes()
    {
        var (detector, engines) = Create(4);
        detector.Failed(engines[0], Model, EngineFailureKind.ConnectFailure, "refused");
        detector.Failed(engines[1], Model, EngineFailureKind.ConnectFailure, "refused");
        Assert.Equal(2, Candidates(detector, engines, out var panic).Count);
        Assert.False(panic);

        // An active probe takes a third out: one of three probe-healthy engines left is under the 50 % threshold.
        engines[2].SetProbeHealthy(false);
        var candidates = Candidates(detector, engines, out panic);
        Assert.True(panic);
        Assert.Equal([engines[0], engines[1], engines[3]], candidates);

        // Probes decide in the end: an engine failing its probe is never a candidate, panic or not.
        foreach (var engine in engines)
        {
            engine.SetProbeHealthy(false);
        }
        Assert.Empty(Candidates(detector, engines, out _));
    }

    [Fact]
    public void The_ceiling_is_configurable()
    {
        var (detector, engines) = Create(4, o => o.MaxEjectionPercent = 25);
        foreach (var engine in engines)
        {
            detector.Failed(engine, Model, EngineFailureKind.ResetBeforeHeaders, "reset");
        }
        Assert.Equal(1, engines.Count(e => e.IsEjected(DateTimeOffset.UtcNow)));
    }
}

/// <summary>Which send failures are the engine's and which the request's, as SocketsHttpHandler reports them.</summary>
public sealed class AttemptClassificationTests
{
    [Fact]
    public async Task A_refused_connection_is_a_connect_failure_and_a_non_ascii_header_is_the_requests_problem()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        using var plain = new HttpMessageInvoker(new SocketsHttpHandler { UseProxy = false });
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => plain.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{port}/"), default));
        Assert.Equal(AttemptError.ConnectFailure, EngineForwarder.Classify(refused));

        // SocketsHttpHandler without a header encoding refuses a UTF-8 value once connected, before sending anything.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}/");
        request.Headers.TryAddWithoutValidation("cf-region", "São Paulo");
        var invalid = await Assert.ThrowsAsync<HttpRequestException>(() => plain.SendAsync(request, default));
        Assert.Equal(AttemptError.RequestCreation, EngineForwarder.Classify(invalid));
    }

    [Fact]
    public async Task A_connection_closed_before_the_headers_is_a_reset()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var server = Task.Run(async () =>
        {
            using var socket = await listener.AcceptSocketAsync();
            await socket.ReceiveAsync(new byte[4096]);
        });
        using var plain = new HttpMessageInvoker(new SocketsHttpHandler { UseProxy = false });
        var sending = plain.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{port}/") { Content = new StringContent("{}") }, default);
        await server.WaitAsync(TimeSpan.FromSeconds(10));
        var reset = await Assert.ThrowsAsync<HttpRequestException>(() => sending);
        Assert.Equal(AttemptError.ResetBeforeHeaders, EngineForwarder.Classify(reset));
    }
}

/// <summary>What the router refuses before any engine sees a request.</summary>
public sealed class JsonRequestCheckTests
{
    [Theory]
    [InlineData(new byte[] { (byte)'{', (byte)'"', (byte)'a', (byte)'"', (byte)':', (byte)'"', 0xFF, 0xFE, (byte)'"', (byte)'}' }, "UTF-8")]
    [InlineData(new byte[] { (byte)'{', (byte)'"', (byte)'a', (byte)'"', (byte)':', (byte)'"', 0xC0, 0xAF, (byte)'"', (byte)'}' }, "UTF-8")]
    [InlineData(new byte[0], "empty")]
    public void Bodies_that_are_not_utf8_json_are_400(byte[] body, string says)
    {
        var error = Assert.Throws<ClientRequestException>(() => JsonRequestReader.Inspect(body, null, wantPrompt: false));
        Assert.Equal(400, error.Status);
        Assert.Contains(says, error.Message);
    }

    [Theory]
    [InlineData("""{"model":"m"} trailing""")]
    [InlineData("""{"model":"m"}{"model":"n"}""")]
    [InlineData("""{"model":"m", /* comment */ "prompt":"x"}""")]
    [InlineData("""{"model":"\ud800"}""")]
    [InlineData("""{"model":"m","prompt":"x",}""")]
    [InlineData("""{"model":"m","messages":[{"role":"user","content":"\ud800"}]}""")]
    [InlineData("""{"model":"m","stop":["ok","\udfff"]}""")]
    [InlineData("""{"model":"m","\ud800":true}""")]
    public void Anything_but_one_json_object_is_400(string body)
    {
        var error = Assert.Throws<ClientRequestException>(() => JsonRequestReader.Inspect(Encoding.UTF8.GetBytes(body), null, wantPrompt: true));
        Assert.Equal(400, error.Status);
    }

    [Theory]
    [InlineData("""{"model":42}""")]
    [InlineData("""{"model":["m"]}""")]
    [InlineData("""{"model":{"id":"m"}}""")]
    [InlineData("""{"model":""}""")]
    public void A_model_that_is_not_a_non_empty_string_is_400_naming_the_field(string body)
    {
        var error = Assert.Throws<ClientRequestException>(() => JsonRequestReader.Inspect(Encoding.UTF8.GetBytes(body), null, wantPrompt: false));
        Assert.Equal(("model", 400), (error.Param, error.Status));
    }

    [Fact]
    public void A_model_past_the_length_limit_is_400_and_null_or_missing_is_left_to_the_sole_model()
    {
        var tooLong = $$"""{"model":"{{new string('m', RequestChecks.MaxModelLength + 1)}}"}""";
        Assert.Equal(400, Assert.Throws<ClientRequestException>(() => JsonRequestReader.Inspect(Encoding.UTF8.GetBytes(tooLong), null, false)).Status);
        Assert.Null(JsonRequestReader.Inspect("""{"model":null}"""u8, null, false).Model);
        Assert.Null(JsonRequestReader.Inspect("""{"prompt":"x"}"""u8, null, false).Model);
    }
}
