using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using VllmStack.Router.Discovery;
using VllmStack.ServiceDefaults.Kubernetes;

namespace VllmStack.Tests.Router;

/// <summary>
/// <see cref="KubernetesEngineSource"/> against a loopback server that answers list and watch requests the way
/// the Kubernetes API server does (there is no cluster here).
/// </summary>
public sealed class KubernetesDiscoveryTests
{
    private const string Namespace = "engines";
    private const string Selector = "app=vllm,tier in (gpu)";
    private static readonly TimeSpan WaitTimeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Initial_list_yields_only_ready_running_pods_and_sends_token_and_selector()
    {
        await using var k8s = await Harness.StartAsync(api => api.SetList("10",
            Pod("ready", "10.0.0.1", ready: true),
            Pod("not-ready", "10.0.0.2", ready: false),
            Pod("pending", null, ready: false, phase: "Pending"),
            Pod("no-ip-yet", null, ready: true)));

        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));

        var watch = await k8s.Api.NextWatchAsync();
        var list = Assert.Single(k8s.Api.Requests, r => r.Watch is null);
        Assert.Equal($"/api/v1/namespaces/{Namespace}/pods", list.Path);
        Assert.Equal(Selector, list.LabelSelector);
        Assert.Equal("Bearer token-1", list.Authorization);

        Assert.Equal($"/api/v1/namespaces/{Namespace}/pods", watch.Request.Path);
        Assert.Equal(Selector, watch.Request.LabelSelector);
        Assert.Equal("true", watch.Request.Watch);
        Assert.Equal("10", watch.Request.ResourceVersion);
        Assert.Equal("true", watch.Request.AllowWatchBookmarks);
        Assert.Equal("30", watch.Request.TimeoutSeconds);
        Assert.Equal("Bearer token-1", watch.Request.Authorization);
    }

    [Fact]
    public async Task An_empty_list_is_yielded_once_and_an_added_ready_pod_appears()
    {
        await using var k8s = await Harness.StartAsync(api => api.SetList("5"));

        Assert.Empty(await k8s.NextSetAsync());

        var watch = await k8s.Api.NextWatchAsync();
        // Not ready yet: no change, nothing yielded; the next set is the one after it became ready.
        watch.Send("ADDED", Pod("a", "10.0.0.1", ready: false, resourceVersion: "6"));
        watch.Send("MODIFIED", Pod("a", "10.0.0.1", ready: true, resourceVersion: "7"));
        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));
    }

    [Fact]
    public async Task Watch_events_add_and_remove_engines_and_a_normal_end_resumes_from_the_last_version()
    {
        await using var k8s = await Harness.StartAsync(api => api.SetList("10", Pod("a", "10.0.0.1", ready: true)));
        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));
        var watch = await k8s.Api.NextWatchAsync();

        watch.Send("ADDED", Pod("b", "10.0.0.2", ready: true, resourceVersion: "11"));
        Assert.Equal(["http://10.0.0.1:8000/", "http://10.0.0.2:8000/"], Urls(await k8s.NextSetAsync()));

        // A change that leaves the set as it is yields nothing: the next set is the one after "a" stopped being ready.
        watch.Send("MODIFIED", Pod("b", "10.0.0.2", ready: true, resourceVersion: "12"));
        watch.Send("MODIFIED", Pod("a", "10.0.0.1", ready: false, resourceVersion: "13"));
        Assert.Equal(["http://10.0.0.2:8000/"], Urls(await k8s.NextSetAsync()));

        watch.Send("ADDED", Pod("c", "10.0.0.3", ready: true, resourceVersion: "14"));
        Assert.Equal(["http://10.0.0.2:8000/", "http://10.0.0.3:8000/"], Urls(await k8s.NextSetAsync()));

        watch.Send("DELETED", Pod("b", "10.0.0.2", ready: true, resourceVersion: "15"));
        Assert.Equal(["http://10.0.0.3:8000/"], Urls(await k8s.NextSetAsync()));

        // Terminating pods keep Running and Ready for a while; they must stop receiving traffic at once.
        watch.Send("MODIFIED", Pod("c", "10.0.0.3", ready: true, resourceVersion: "16", deleting: true));
        Assert.Empty(await k8s.NextSetAsync());

        watch.Send("BOOKMARK", Bookmark("42"));
        watch.End();
        var next = await k8s.Api.NextWatchAsync();
        Assert.Equal("42", next.Request.ResourceVersion);
        Assert.Single(k8s.Api.Requests, r => r.Watch is null);

        next.Send("ADDED", Pod("d", "10.0.0.4", ready: true, resourceVersion: "43"));
        Assert.Equal(["http://10.0.0.4:8000/"], Urls(await k8s.NextSetAsync()));
    }

    [Fact]
    public async Task An_expired_error_event_causes_a_relist_and_a_watch_from_the_new_version()
    {
        await using var k8s = await Harness.StartAsync(api => api.SetList("10", Pod("a", "10.0.0.1", ready: true)));
        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));
        var watch = await k8s.Api.NextWatchAsync();

        k8s.Api.SetList("20", Pod("b", "10.0.0.2", ready: true));
        watch.Send("ERROR", new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["status"] = "Failure",
            ["message"] = "too old resource version: 10 (20)",
            ["reason"] = "Expired",
            ["code"] = 410,
        });

        Assert.Equal(["http://10.0.0.2:8000/"], Urls(await k8s.NextSetAsync()));
        var next = await k8s.Api.NextWatchAsync();
        Assert.Equal("20", next.Request.ResourceVersion);
        Assert.Equal(2, k8s.Api.Requests.Count(r => r.Watch is null));
    }

    [Fact]
    public async Task A_gone_watch_causes_a_relist_and_a_rotated_token_is_picked_up()
    {
        await using var k8s = await Harness.StartAsync(api => api.SetList("10", Pod("a", "10.0.0.1", ready: true)));
        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));
        var first = await k8s.Api.NextWatchAsync();
        Assert.Equal("Bearer token-1", first.Request.Authorization);

        first.Send("MODIFIED", Pod("a", "10.0.0.1", ready: true, resourceVersion: "11"));
        await File.WriteAllTextAsync(k8s.TokenPath, "token-2\n");
        k8s.Api.WatchFailures.Enqueue(HttpStatusCode.Gone);
        k8s.Api.SetList("30", Pod("a", "10.0.0.1", ready: true), Pod("b", "10.0.0.2", ready: true));
        first.End();

        Assert.Equal(["http://10.0.0.1:8000/", "http://10.0.0.2:8000/"], Urls(await k8s.NextSetAsync()));
        var third = await k8s.Api.NextWatchAsync();
        Assert.Equal("30", third.Request.ResourceVersion);
        Assert.Equal("Bearer token-2", third.Request.Authorization);

        var requests = k8s.Api.Requests.ToArray();
        Assert.Equal(
            [(null, null), ("true", "10"), ("true", "11"), (null, null), ("true", "30")],
            requests.Select(r => (r.Watch, r.ResourceVersion)));
        Assert.Equal("Bearer token-2", requests[2].Authorization);
    }

    [Fact]
    public async Task Forbidden_names_the_missing_permission_and_failures_are_retried()
    {
        await using var k8s = await Harness.StartAsync(api =>
        {
            api.SetList("10", Pod("a", "10.0.0.1", ready: true));
            api.ListFailures.Enqueue(HttpStatusCode.Forbidden);
            api.WatchFailures.Enqueue(HttpStatusCode.ServiceUnavailable);
        });

        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));
        Assert.Equal(2, k8s.Api.Requests.Count(r => r.Watch is null));
        var error = Assert.Single(k8s.Log.Entries, e => e.Level == LogLevel.Error);
        Assert.Contains($"list pods in namespace {Namespace}", error.Message);
        Assert.Contains("get, list and watch on pods", error.Message);

        // The watch answered 503 first; it is retried from the same version after a back-off.
        var watch = await k8s.Api.NextWatchAsync();
        Assert.Equal("10", watch.Request.ResourceVersion);
        Assert.Equal(2, k8s.Api.Requests.Count(r => r.Watch == "true"));
        Assert.Contains(k8s.Log.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("503"));

        watch.Send("ADDED", Pod("b", "10.0.0.2", ready: true, resourceVersion: "11"));
        Assert.Equal(["http://10.0.0.1:8000/", "http://10.0.0.2:8000/"], Urls(await k8s.NextSetAsync()));
    }

    [Fact]
    public async Task An_https_api_server_is_trusted_through_the_cluster_ca()
    {
        using var ca = CreateCa("CN=test-cluster-ca");
        using var serverCertificate = CreateServerCertificate(ca);
        await using var k8s = await Harness.StartAsync(api => api.SetList("10", Pod("a", "10.0.0.1", ready: true)), ca, serverCertificate);

        Assert.Equal("https", k8s.Api.Address.Scheme);
        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));
        var watch = await k8s.Api.NextWatchAsync();
        Assert.Equal("Bearer token-1", watch.Request.Authorization);
    }

    [Fact]
    public async Task A_certificate_the_cluster_ca_issued_for_another_host_is_refused()
    {
        using var ca = CreateCa("CN=test-cluster-ca");
        using var elsewhere = CreateServerCertificate(ca, "apiserver.elsewhere.example");
        await using var k8s = await Harness.StartAsync(api => api.SetList("10", Pod("a", "10.0.0.1", ready: true)), ca, elsewhere);

        // The TLS handshake fails, so the list never reaches the server; the failure is logged and retried.
        var first = k8s.NextSetOrEndAsync();
        var deadline = DateTime.UtcNow + WaitTimeout;
        while (!k8s.Log.Entries.Any(e => e.Level == LogLevel.Warning && e.Message.Contains($"list of pods in namespace {Namespace} failed")))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no failed list was logged: {string.Join(" | ", k8s.Log.Entries.Select(e => e.Message))}");
            await Task.Delay(20);
        }
        Assert.Empty(k8s.Api.Requests);
        Assert.False(first.IsCompleted, "engines came from an API server the cluster CA does not vouch for");
    }

    [Fact]
    public async Task A_watch_that_ends_without_an_event_is_resumed_from_the_same_version()
    {
        await using var k8s = await Harness.StartAsync(api => api.SetList("10", Pod("a", "10.0.0.1", ready: true)));
        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));

        (await k8s.Api.NextWatchAsync()).End();

        var next = await k8s.Api.NextWatchAsync();
        Assert.Equal("10", next.Request.ResourceVersion);
        Assert.Single(k8s.Api.Requests, r => r.Watch is null);
        next.Send("ADDED", Pod("b", "10.0.0.2", ready: true, resourceVersion: "11"));
        Assert.Equal(["http://10.0.0.1:8000/", "http://10.0.0.2:8000/"], Urls(await k8s.NextSetAsync()));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_quiet_watch_outlives_the_request_timeout(bool https)
    {
        // An idle namespace: no event for longer than RequestTimeout, which bounds only the wait for response headers.
        using var ca = CreateCa("CN=test-cluster-ca");
        using var serverCertificate = CreateServerCertificate(ca);
        await using var k8s = await Harness.StartAsync(api => api.SetList("10", Pod("a", "10.0.0.1", ready: true)),
            https ? ca : null, https ? serverCertificate : null, options => options.RequestTimeout = TimeSpan.FromSeconds(1));
        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));
        var watch = await k8s.Api.NextWatchAsync();
        // The client asks for HTTP/2, which TLS negotiates; in clear text it stays on HTTP/1.1.
        Assert.Equal(https ? "HTTP/2" : "HTTP/1.1", watch.Request.Protocol);

        await Task.Delay(TimeSpan.FromSeconds(2.5));
        watch.Send("ADDED", Pod("b", "10.0.0.2", ready: true, resourceVersion: "11"));

        Assert.Equal(["http://10.0.0.1:8000/", "http://10.0.0.2:8000/"], Urls(await k8s.NextSetAsync()));
        Assert.Single(k8s.Api.Requests, r => r.Watch == "true");
        Assert.DoesNotContain(k8s.Log.Entries, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task A_watch_whose_headers_do_not_come_times_out_and_is_retried()
    {
        await using var k8s = await Harness.StartAsync(api =>
        {
            api.SetList("10", Pod("a", "10.0.0.1", ready: true));
            api.FlushWatchHeaders = false;
        }, configure: options => options.RequestTimeout = TimeSpan.FromSeconds(1));
        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));
        await k8s.Api.NextWatchAsync();
        k8s.Api.FlushWatchHeaders = true;

        var next = await k8s.Api.NextWatchAsync();
        Assert.Contains(k8s.Log.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains($"watch of pods in namespace {Namespace} timed out"));
        Assert.Equal("10", next.Request.ResourceVersion);
        next.Send("ADDED", Pod("b", "10.0.0.2", ready: true, resourceVersion: "11"));
        Assert.Equal(["http://10.0.0.1:8000/", "http://10.0.0.2:8000/"], Urls(await k8s.NextSetAsync()));
    }

    [Fact]
    public async Task A_watch_that_stays_silent_past_its_timeout_is_restarted()
    {
        // A proxy that keeps the stream open after the server's timeoutSeconds: the router gives up on it by itself.
        await using var k8s = await Harness.StartAsync(api => api.SetList("10", Pod("a", "10.0.0.1", ready: true)),
            configure: options => (options.WatchTimeoutSeconds, options.RequestTimeout) = (1, TimeSpan.FromSeconds(2)));
        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));
        var silent = await k8s.Api.NextWatchAsync();
        Assert.Equal("1", silent.Request.TimeoutSeconds);

        var started = DateTime.UtcNow;
        var next = await k8s.Api.NextWatchAsync();
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(2), "restarted before the watch's deadline");
        Assert.Equal("10", next.Request.ResourceVersion);
        Assert.Single(k8s.Api.Requests, r => r.Watch is null);
    }

    [Fact]
    public async Task Disposing_the_source_ends_its_watch()
    {
        await using var k8s = await Harness.StartAsync(api => api.SetList("10", Pod("a", "10.0.0.1", ready: true)));
        Assert.Equal(["http://10.0.0.1:8000/"], Urls(await k8s.NextSetAsync()));
        await k8s.Api.NextWatchAsync();

        k8s.Source.Dispose();

        Assert.Null(await k8s.NextSetOrEndAsync());
    }

    [Fact]
    public void Certificate_validation_accepts_only_the_cluster_ca_and_the_right_host()
    {
        using var ca = CreateCa("CN=test-cluster-ca");
        using var otherCa = CreateCa("CN=someone-else");
        using var serverCertificate = CreateServerCertificate(ca);
        var clusterCa = new X509Certificate2Collection(ca);

        Assert.True(ClusterCa.IsTrusted(clusterCa, serverCertificate, null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.False(ClusterCa.IsTrusted(new X509Certificate2Collection(otherCa), serverCertificate, null, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.False(ClusterCa.IsTrusted(clusterCa, serverCertificate, null,
            SslPolicyErrors.RemoteCertificateChainErrors | SslPolicyErrors.RemoteCertificateNameMismatch));
        Assert.False(ClusterCa.IsTrusted(clusterCa, null, null, SslPolicyErrors.RemoteCertificateNotAvailable));
    }

    [Fact]
    public void Options_report_what_is_missing()
    {
        var options = new KubernetesDiscoveryOptions { ApiServer = null, LabelSelector = " ", Port = 0, MaxReconnectDelay = TimeSpan.Zero };

        var problems = options.Validate().ToList();

        Assert.Contains(problems, p => p.Contains("LabelSelector"));
        Assert.Contains(problems, p => p.Contains("ApiServer"));
        Assert.Contains(problems, p => p.Contains("Port"));
        Assert.Contains(problems, p => p.Contains("ReconnectDelay"));
        Assert.Throws<ArgumentException>(() => new KubernetesEngineSource(options, new RecordingLogger<KubernetesEngineSource>()));
        Assert.Empty(new KubernetesDiscoveryOptions { ApiServer = new Uri("http://127.0.0.1:8001"), LabelSelector = "app=vllm" }.Validate());
    }

    private static string[] Urls(IReadOnlySet<Uri> set) => set.Select(u => u.ToString()).Order(StringComparer.Ordinal).ToArray();

    private static JsonObject Pod(string name, string? ip, bool ready, string phase = "Running", string resourceVersion = "1", bool deleting = false)
    {
        var metadata = new JsonObject
        {
            ["name"] = name,
            ["namespace"] = Namespace,
            ["uid"] = $"uid-{name}",
            ["resourceVersion"] = resourceVersion,
            ["labels"] = new JsonObject { ["app"] = "vllm", ["tier"] = "gpu" },
            ["managedFields"] = new JsonArray(new JsonObject { ["manager"] = "kubelet", ["operation"] = "Update" }),
        };
        if (deleting)
        {
            metadata["deletionTimestamp"] = "2025-01-01T00:00:00Z";
            metadata["deletionGracePeriodSeconds"] = 30;
        }
        var status = new JsonObject
        {
            ["phase"] = phase,
            ["hostIP"] = "192.168.1.10",
            ["conditions"] = new JsonArray(
                new JsonObject { ["type"] = "Initialized", ["status"] = "True" },
                new JsonObject { ["type"] = "Ready", ["status"] = ready ? "True" : "False", ["lastTransitionTime"] = "2025-01-01T00:00:00Z" },
                new JsonObject { ["type"] = "ContainersReady", ["status"] = ready ? "True" : "False" }),
        };
        if (ip is not null)
        {
            status["podIP"] = ip;
            status["podIPs"] = new JsonArray(new JsonObject { ["ip"] = ip });
        }
        return new JsonObject
        {
            ["kind"] = "Pod",
            ["apiVersion"] = "v1",
            ["metadata"] = metadata,
            ["spec"] = new JsonObject { ["containers"] = new JsonArray(new JsonObject { ["name"] = "vllm", ["image"] = "vllm/vllm-openai" }) },
            ["status"] = status,
        };
    }

    private static JsonObject Bookmark(string resourceVersion) => new()
    {
        ["kind"] = "Pod",
        ["apiVersion"] = "v1",
        ["metadata"] = new JsonObject
        {
            ["resourceVersion"] = resourceVersion,
            ["annotations"] = new JsonObject { ["k8s.io/initial-events-end"] = "true" },
        },
    };

    private static X509Certificate2 CreateCa(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddDays(-1), now.AddDays(1));
    }

    /// <summary>A serving certificate issued by <paramref name="ca"/> for loopback, or for <paramref name="dnsName"/> alone.</summary>
    private static X509Certificate2 CreateServerCertificate(X509Certificate2 ca, string? dnsName = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=kube-apiserver", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        if (dnsName is null)
        {
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
        }
        else
        {
            names.AddDnsName(dnsName);
        }
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var now = DateTimeOffset.UtcNow;
        using var issued = request.Create(ca, now.AddHours(-1), now.AddHours(12), RandomNumberGenerator.GetBytes(16));
        using var withKey = issued.CopyWithPrivateKey(key);
        // Round-trip through PKCS#12 so that TLS gets a key it can use on every platform.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>A source watching a fake API server, with a token file in a temp dir; disposes all of it.</summary>
    private sealed class Harness : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly DirectoryInfo _directory;
        private readonly IAsyncEnumerator<IReadOnlySet<Uri>> _sets;
        private Task<bool>? _pending;

        private Harness(FakeKubernetesApi api, DirectoryInfo directory, KubernetesDiscoveryOptions options)
        {
            Api = api;
            _directory = directory;
            TokenPath = options.TokenPath;
            Source = new KubernetesEngineSource(options, Log);
            _sets = Source.WatchAsync(_stop.Token).GetAsyncEnumerator(_stop.Token);
        }

        public FakeKubernetesApi Api { get; }

        public KubernetesEngineSource Source { get; }

        public string TokenPath { get; }

        public RecordingLogger<KubernetesEngineSource> Log { get; } = new();

        public static async Task<Harness> StartAsync(Action<FakeKubernetesApi> arrange, X509Certificate2? ca = null, X509Certificate2? serverCertificate = null,
            Action<KubernetesDiscoveryOptions>? configure = null)
        {
            var directory = Directory.CreateTempSubdirectory("vllmstack-k8s-");
            var api = await FakeKubernetesApi.StartAsync(serverCertificate);
            arrange(api);
            var tokenPath = Path.Combine(directory.FullName, "token");
            await File.WriteAllTextAsync(tokenPath, "token-1\n");
            var caPath = Path.Combine(directory.FullName, "ca.crt");
            if (ca is not null)
            {
                await File.WriteAllTextAsync(caPath, ca.ExportCertificatePem());
            }
            var options = new KubernetesDiscoveryOptions
            {
                Namespace = Namespace,
                LabelSelector = Selector,
                ApiServer = api.Address,
                TokenPath = tokenPath,
                CaCertificatePath = caPath,
                RequestTimeout = TimeSpan.FromSeconds(5),
                WatchTimeoutSeconds = 30,
                ReconnectDelay = TimeSpan.FromMilliseconds(50),
                MaxReconnectDelay = TimeSpan.FromMilliseconds(200),
            };
            configure?.Invoke(options);
            return new Harness(api, directory, options);
        }

        /// <summary>The next set the source yields, failing the test after a bounded wait.</summary>
        public async Task<IReadOnlySet<Uri>> NextSetAsync() => await NextSetOrEndAsync() ?? throw new Xunit.Sdk.XunitException("the source ended");

        /// <summary>The next set, or null when the sequence completed; fails the test after a bounded wait.</summary>
        public async Task<IReadOnlySet<Uri>?> NextSetOrEndAsync()
        {
            _pending = _sets.MoveNextAsync().AsTask();
            var moved = await _pending.WaitAsync(WaitTimeout);
            _pending = null;
            return moved ? _sets.Current : null;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            if (_pending is not null)
            {
                // A MoveNext still waiting must finish (cancelled) before the enumerator may be disposed.
                await _pending.ContinueWith(_ => { }, TaskScheduler.Default).WaitAsync(WaitTimeout);
            }
            await _sets.DisposeAsync().AsTask().WaitAsync(WaitTimeout);
            Source.Dispose();
            await Api.DisposeAsync();
            _stop.Dispose();
            _directory.Delete(recursive: true);
        }
    }

    private sealed record RecordedRequest(
        string Path, string? LabelSelector, string? Watch, string? ResourceVersion, string? AllowWatchBookmarks, string? TimeoutSeconds, string? Authorization,
        string Protocol);

    /// <summary>One open watch: the test pushes event lines through it; <see cref="End"/> ends the response normally.</summary>
    private sealed class FakeWatch(RecordedRequest request)
    {
        private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();

        public RecordedRequest Request { get; } = request;

        public ChannelReader<string> Lines => _lines.Reader;

        public void Send(string type, JsonObject obj) =>
            Assert.True(_lines.Writer.TryWrite(new JsonObject { ["type"] = type, ["object"] = obj }.ToJsonString()));

        public void End() => _lines.Writer.TryComplete();
    }

    /// <summary>Answers <c>GET /api/v1/namespaces/{ns}/pods</c> as a list or, with <c>watch=true</c>, as a stream of event lines.</summary>
    private sealed class FakeKubernetesApi : IAsyncDisposable
    {
        private readonly Channel<FakeWatch> _watches = Channel.CreateUnbounded<FakeWatch>();
        private readonly ConcurrentQueue<FakeWatch> _allWatches = new();
        private WebApplication _app = null!;
        private volatile string _list = "";

        public Uri Address { get; private set; } = null!;

        public ConcurrentQueue<RecordedRequest> Requests { get; } = new();

        /// <summary>Statuses answered, in order, to the next list requests instead of the list.</summary>
        public ConcurrentQueue<HttpStatusCode> ListFailures { get; } = new();

        /// <summary>Statuses answered, in order, to the next watch requests instead of a stream.</summary>
        public ConcurrentQueue<HttpStatusCode> WatchFailures { get; } = new();

        /// <summary>False: a watch's response headers wait for its first event, as from an API server that hangs.</summary>
        public bool FlushWatchHeaders { get; set; } = true;

        public static async Task<FakeKubernetesApi> StartAsync(X509Certificate2? serverCertificate)
        {
            var api = new FakeKubernetesApi();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
            if (serverCertificate is null)
            {
                builder.WebHost.UseUrls("http://127.0.0.1:0");
            }
            else
            {
                builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(serverCertificate)));
            }
            api._app = builder.Build();
            api._app.MapGet("/api/v1/namespaces/{ns}/pods", api.HandleAsync);
            await api._app.StartAsync();
            var address = api._app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            api.Address = new Uri(address);
            return api;
        }

        public void SetList(string resourceVersion, params JsonObject[] pods) => _list = new JsonObject
        {
            ["kind"] = "PodList",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject { ["resourceVersion"] = resourceVersion },
            ["items"] = new JsonArray([.. pods]),
        }.ToJsonString();

        public async Task<FakeWatch> NextWatchAsync() => await _watches.Reader.ReadAsync().AsTask().WaitAsync(WaitTimeout);

        public async ValueTask DisposeAsync()
        {
            foreach (var watch in _allWatches)
            {
                watch.End();
            }
            await _app.DisposeAsync();
        }

        private async Task HandleAsync(HttpContext context)
        {
            var query = context.Request.Query;
            var request = new RecordedRequest(
                context.Request.Path,
                query.TryGetValue("labelSelector", out var selector) ? selector.ToString() : null,
                // watch=false is a list, as the API server reads it (the client sends it on lists).
                query.TryGetValue("watch", out var watch) && watch != "false" ? watch.ToString() : null,
                query.TryGetValue("resourceVersion", out var version) ? version.ToString() : null,
                query.TryGetValue("allowWatchBookmarks", out var bookmarks) ? bookmarks.ToString() : null,
                query.TryGetValue("timeoutSeconds", out var timeout) ? timeout.ToString() : null,
                context.Request.Headers.Authorization.ToString() is { Length: > 0 } authorization ? authorization : null,
                context.Request.Protocol);
            Requests.Enqueue(request);

            var isWatch = request.Watch == "true";
            if ((isWatch ? WatchFailures : ListFailures).TryDequeue(out var failure))
            {
                context.Response.StatusCode = (int)failure;
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(new JsonObject
                {
                    ["kind"] = "Status",
                    ["apiVersion"] = "v1",
                    ["status"] = "Failure",
                    ["message"] = $"pods is refused with {(int)failure}",
                    ["code"] = (int)failure,
                }.ToJsonString());
                return;
            }
            context.Response.ContentType = "application/json";
            if (!isWatch)
            {
                await context.Response.WriteAsync(_list);
                return;
            }

            var fakeWatch = new FakeWatch(request);
            _allWatches.Enqueue(fakeWatch);
            // The API server flushes a watch's headers at once (Kestrel holds them until the first write otherwise).
            await context.Response.StartAsync(context.RequestAborted);
            if (FlushWatchHeaders)
            {
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
            _watches.Writer.TryWrite(fakeWatch);
            try
            {
                await foreach (var line in fakeWatch.Lines.ReadAllAsync(context.RequestAborted))
                {
                    await context.Response.WriteAsync(line + "\n", context.RequestAborted);
                    await context.Response.Body.FlushAsync(context.RequestAborted);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
                // The client went away (re-list, cancellation): nothing to answer.
            }
        }
    }

    private sealed class RecordingLogger<T> : ILogger<T>
    {
        public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Enqueue((logLevel, formatter(state, exception)));
    }
}
