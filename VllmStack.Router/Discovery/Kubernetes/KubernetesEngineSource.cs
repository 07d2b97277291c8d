using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using VllmStack.ServiceDefaults.Kubernetes;

namespace VllmStack.Router.Discovery;

/// <summary>
/// Engines are the ready pods matching a label selector. Lists them through the Kubernetes API, then follows
/// the watch stream from the list's resource version, re-listing when that version has expired (410 Gone).
/// Talks plain HTTPS with the service-account token and cluster CA (KubernetesClient does not restore here).
/// </summary>
public sealed partial class KubernetesEngineSource : IEngineSource, IDisposable
{
    private const int ListPageSize = 500;

    private readonly KubernetesDiscoveryOptions _options;
    private readonly ILogger<KubernetesEngineSource> _logger;
    private readonly KubernetesApiClient _api;
    private readonly string _podsQuery;
    private readonly CancellationTokenSource _disposed = new();

    public KubernetesEngineSource(KubernetesDiscoveryOptions options, ILogger<KubernetesEngineSource> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        var problems = options.Validate().ToList();
        if (problems.Count > 0)
        {
            throw new ArgumentException($"Invalid Kubernetes discovery options: {string.Join("; ", problems)}", nameof(options));
        }
        _options = options;
        _logger = logger;
        _api = new KubernetesApiClient(options.ApiServer!, options.TokenPath, options.CaCertificatePath, options.RequestTimeout, "VllmStack.Router", logger);
        _podsQuery = $"api/v1/namespaces/{Uri.EscapeDataString(options.Namespace)}/pods?labelSelector={Uri.EscapeDataString(options.LabelSelector)}";
    }

    public string Name => "kubernetes";

    /// <summary>
    /// Yields the engine URLs once after the first successful list (even if empty), then whenever they change.
    /// API failures are logged and retried with back-off; the sequence runs until cancelled (it then throws
    /// <see cref="OperationCanceledException"/>) or until the source is disposed (it then completes).
    /// </summary>
    public async IAsyncEnumerable<IReadOnlySet<Uri>> WatchAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var sets = Channel.CreateUnbounded<IReadOnlySet<Uri>>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposed.Token);
        var producer = RunAsync(new EngineSetWriter(sets.Writer), stop.Token);
        try
        {
            await foreach (var set in sets.Reader.ReadAllAsync(cancellationToken))
            {
                yield return set;
            }
        }
        finally
        {
            await stop.CancelAsync();
            await producer;
        }
    }

    /// <summary>Ends running watches (their sequences complete) and releases the HTTP client.</summary>
    public void Dispose()
    {
        // Cancel first so that running watches end quietly rather than fail on a disposed client.
        _disposed.Cancel();
        _api.Dispose();
    }

    private async Task RunAsync(EngineSetWriter output, CancellationToken cancellationToken)
    {
        // Discovery runs on its own, off the consumer's MoveNext call stack.
        await Task.Yield();
        Exception? failure = null;
        try
        {
            await DiscoverAsync(output, cancellationToken);
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // Stopped (consumer cancelled or source disposed): whatever was in flight failing then is expected.
        }
        catch (Exception e)
        {
            failure = e;
        }
        finally
        {
            output.Complete(failure);
        }
    }

    private async Task DiscoverAsync(EngineSetWriter output, CancellationToken cancellationToken)
    {
        var pods = new PodTable();
        var backoff = new ReconnectBackoff(_options.ReconnectDelay, _options.MaxReconnectDelay);
        while (true)
        {
            try
            {
                await ListAsync(pods, cancellationToken);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                await DelayAfterFailureAsync(e, "list", backoff, cancellationToken);
                continue;
            }
            backoff.Reset();
            LogListed(pods.Count, _options.Namespace, pods.ResourceVersion);
            if (output.Publish(pods.Engines(), force: !output.HasPublished))
            {
                LogEnginesChanged(output.Count, _options.Namespace, _options.LabelSelector);
            }

            await WatchUntilExpiredAsync(pods, output, backoff, cancellationToken);
            if (pods.EventsSinceList == 0)
            {
                // Expired again before a single event: don't let list/watch turn into a busy loop.
                await Task.Delay(backoff.NextDelay(), cancellationToken);
            }
        }
    }

    private async Task ListAsync(PodTable pods, CancellationToken cancellationToken)
    {
        var listed = new List<PodInfo>();
        string? continueToken = null;
        string resourceVersion;
        do
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(_options.RequestTimeout);
            var url = $"{_podsQuery}&limit={ListPageSize}";
            if (continueToken is not null)
            {
                url += $"&continue={Uri.EscapeDataString(continueToken)}";
            }
            using var response = await SendAsync(url, "list", deadline.Token);
            await using var body = await response.Content.ReadAsStreamAsync(deadline.Token);
            using var document = await JsonDocument.ParseAsync(body, default, deadline.Token);
            (resourceVersion, continueToken) = PodJson.ReadList(document.RootElement, _options.Port, listed);
        }
        while (!string.IsNullOrEmpty(continueToken));
        pods.Reset(listed, resourceVersion);
    }

    /// <summary>Follows the watch from the table's resource version until that version expires, re-watching after normal ends and failures.</summary>
    private async Task WatchUntilExpiredAsync(PodTable pods, EngineSetWriter output, ReconnectBackoff backoff, CancellationToken cancellationToken)
    {
        while (true)
        {
            WatchEnd end;
            try
            {
                end = await WatchOnceAsync(pods, output, backoff, cancellationToken);
            }
            catch (KubernetesApiException e) when (e.StatusCode == HttpStatusCode.Gone)
            {
                end = WatchEnd.Expired;
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // The last resource version is still good: resume from it (a 410 then says otherwise).
                await DelayAfterFailureAsync(e, "watch", backoff, cancellationToken);
                continue;
            }

            if (end == WatchEnd.Expired)
            {
                LogResourceVersionExpired(pods.ResourceVersion);
                return;
            }
            if (end == WatchEnd.Quiet)
            {
                // A server or proxy that ends watches at once must not make this a busy loop.
                await Task.Delay(_options.ReconnectDelay, cancellationToken);
            }
        }
    }

    private async Task<WatchEnd> WatchOnceAsync(PodTable pods, EngineSetWriter output, ReconnectBackoff backoff, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.RequestTimeout);
        var url = $"{_podsQuery}&watch=true&allowWatchBookmarks=true&timeoutSeconds={_options.WatchTimeoutSeconds}";
        if (pods.ResourceVersion.Length > 0)
        {
            url += $"&resourceVersion={Uri.EscapeDataString(pods.ResourceVersion)}";
        }
        using var response = await SendAsync(url, "watch", deadline.Token);
        backoff.Reset();
        // The server ends the watch after timeoutSeconds; the slack covers a server or proxy that does not.
        deadline.CancelAfter(TimeSpan.FromSeconds(_options.WatchTimeoutSeconds) + _options.RequestTimeout);

        var events = 0;
        try
        {
            await using var body = await response.Content.ReadAsStreamAsync(deadline.Token);
            using var reader = new StreamReader(body, Encoding.UTF8);
            while (await reader.ReadLineAsync(deadline.Token) is { } line)
            {
                if (string.IsNullOrWhiteSpace(line))
                {
                    continue;
                }
                var watchEvent = PodJson.ReadEvent(line, _options.Port);
                if (watchEvent.Type == WatchEventType.Error)
                {
                    if (watchEvent.ErrorCode == (int)HttpStatusCode.Gone)
                    {
                        return WatchEnd.Expired;
                    }
                    throw new KubernetesApiException((HttpStatusCode)(watchEvent.ErrorCode ?? 500), "watch", watchEvent.ErrorMessage ?? "ERROR event");
                }

                events++;
                Apply(pods, watchEvent);
                if (output.Publish(pods.Engines(), force: false))
                {
                    LogEnginesChanged(output.Count, _options.Namespace, _options.LabelSelector);
                }
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            LogWatchDeadline(_options.WatchTimeoutSeconds);
        }
        return events > 0 ? WatchEnd.Progressed : WatchEnd.Quiet;
    }

    private void Apply(PodTable pods, WatchEvent watchEvent)
    {
        switch (watchEvent.Type)
        {
            case WatchEventType.Added or WatchEventType.Modified when watchEvent.Pod is { } pod:
                pods.Upsert(pod);
                break;
            case WatchEventType.Deleted when watchEvent.Pod is { } pod:
                pods.Remove(pod.Key);
                break;
            case WatchEventType.Bookmark:
                break;
            default:
                LogIgnoredEvent(watchEvent.Type);
                break;
        }
        pods.EventsSinceList++;
        if (!string.IsNullOrEmpty(watchEvent.ResourceVersion))
        {
            pods.ResourceVersion = watchEvent.ResourceVersion;
        }
    }

    private Task<HttpResponseMessage> SendAsync(string relativeUrl, string verb, CancellationToken cancellationToken) =>
        _api.SendAsync(HttpMethod.Get, relativeUrl, null, verb, cancellationToken);

    private async Task DelayAfterFailureAsync(Exception failure, string verb, ReconnectBackoff backoff, CancellationToken cancellationToken)
    {
        var delay = backoff.NextDelay();
        switch (failure)
        {
            case KubernetesApiException { StatusCode: HttpStatusCode.Forbidden } e:
                LogForbidden(e.Verb, _options.Namespace, e.Message, delay);
                break;
            case KubernetesApiException { StatusCode: HttpStatusCode.Unauthorized } e:
                LogUnauthorized(e.Verb, _options.Namespace, e.Message, _options.TokenPath, delay);
                break;
            case KubernetesApiException e:
                LogApiFailure(e.Verb, _options.Namespace, (int)e.StatusCode, e.Message, delay);
                break;
            case OperationCanceledException:
                LogTimedOut(verb, _options.Namespace, _options.RequestTimeout, delay);
                break;
            case HttpRequestException or IOException or SocketException or JsonException:
                LogRequestFailed(failure, verb, _options.Namespace, delay);
                break;
            default:
                LogUnexpectedFailure(failure, verb, _options.Namespace, delay);
                break;
        }
        await Task.Delay(delay, cancellationToken);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Listed {PodCount} matching pods in namespace {Namespace} at resource version {ResourceVersion}")]
    private partial void LogListed(int podCount, string @namespace, string resourceVersion);

    [LoggerMessage(Level = LogLevel.Information, Message = "Kubernetes discovery: {EngineCount} ready engine pods in namespace {Namespace} match {LabelSelector}")]
    private partial void LogEnginesChanged(int engineCount, string @namespace, string labelSelector);

    [LoggerMessage(Level = LogLevel.Information, Message = "Kubernetes watch resource version {ResourceVersion} expired; re-listing pods")]
    private partial void LogResourceVersionExpired(string resourceVersion);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Kubernetes watch passed its {WatchTimeoutSeconds} s lifetime without the server ending it; re-watching")]
    private partial void LogWatchDeadline(int watchTimeoutSeconds);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Ignored a Kubernetes watch event of type {EventType}")]
    private partial void LogIgnoredEvent(WatchEventType eventType);

    [LoggerMessage(Level = LogLevel.Error, Message = "Kubernetes API forbade the router to {Verb} pods in namespace {Namespace}: {Message}. Grant its service account the RBAC verbs get, list and watch on pods in that namespace (a Role and a RoleBinding); retrying in {Delay}")]
    private partial void LogForbidden(string verb, string @namespace, string message, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Error, Message = "Kubernetes API rejected the router's credentials to {Verb} pods in namespace {Namespace}: {Message}. Check the service account token at {TokenPath}; the account needs get, list and watch on pods in that namespace; retrying in {Delay}")]
    private partial void LogUnauthorized(string verb, string @namespace, string message, string tokenPath, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Kubernetes {Verb} of pods in namespace {Namespace} failed with {StatusCode}: {Message}; retrying in {Delay}")]
    private partial void LogApiFailure(string verb, string @namespace, int statusCode, string message, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Kubernetes {Verb} of pods in namespace {Namespace} timed out after {Timeout}; retrying in {Delay}")]
    private partial void LogTimedOut(string verb, string @namespace, TimeSpan timeout, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Kubernetes {Verb} of pods in namespace {Namespace} failed; retrying in {Delay}")]
    private partial void LogRequestFailed(Exception exception, string verb, string @namespace, TimeSpan delay);

    [LoggerMessage(Level = LogLevel.Error, Message = "Kubernetes {Verb} of pods in namespace {Namespace} failed unexpectedly; retrying in {Delay}")]
    private partial void LogUnexpectedFailure(Exception exception, string verb, string @namespace, TimeSpan delay);



    private enum WatchEnd
    {
        /// <summary>The stream ended (or reached its deadline) after delivering events.</summary>
        Progressed,

        /// <summary>The stream ended without a single event.</summary>
        Quiet,

        /// <summary>The resource version is too old to watch from: re-list.</summary>
        Expired,
    }
}
