using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Text.Json;
using System.Threading.Channels;
using k8s;
using k8s.Models;
using VllmStack.ServiceDefaults.Kubernetes;

namespace VllmStack.Router.Discovery;

/// <summary>
/// Engines are the ready pods matching a label selector. Lists them through the Kubernetes API, then follows
/// the watch stream from the list's resource version, re-listing when that version has expired (410 Gone).
/// Talks to the API server through KubernetesClient (<see cref="KubernetesApi"/>: service-account token, cluster CA).
/// </summary>
public sealed partial class KubernetesEngineSource : IEngineSource, IDisposable
{
    private const int ListPageSize = 500;

    private readonly KubernetesDiscoveryOptions _options;
    private readonly ILogger<KubernetesEngineSource> _logger;
    private readonly k8s.Kubernetes _client;
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
        _client = KubernetesApi.Create(options.ApiServer!, options.TokenPath, options.CaCertificatePath, options.RequestTimeout, "VllmStack.Router", logger);
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
        _client.Dispose();
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
        V1PodList page;
        do
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(_options.RequestTimeout);
            page = await _client.CoreV1.ListNamespacedPodAsync(_options.Namespace, continueParameter: continueToken,
                labelSelector: _options.LabelSelector, limit: ListPageSize, cancellationToken: deadline.Token);
            listed.AddRange(page.Items.Select(pod => PodInfo.From(pod, _options.Port)).OfType<PodInfo>());
            continueToken = page.Metadata?.ContinueProperty;
        }
        while (!string.IsNullOrEmpty(continueToken));
        pods.Reset(listed, page.Metadata?.ResourceVersion ?? "");
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
            catch (Exception e) when (KubernetesApiError.From(e) is { StatusCode: HttpStatusCode.Gone })
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

    /// <summary>
    /// One watch request, followed until the server ends it, its deadline passes, or an ERROR event arrives: a 410
    /// there means the resource version expired; any other ERROR event, or an object that cannot be read, is thrown.
    /// </summary>
    private async Task<WatchEnd> WatchOnceAsync(PodTable pods, EngineSetWriter output, ReconnectBackoff backoff, CancellationToken cancellationToken)
    {
        // The server ends the watch after timeoutSeconds; the slack covers a server or proxy that does not, so that a
        // stream gone quiet is restarted. (The response headers have their own, shorter, timeout: KubernetesApi.)
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(_options.WatchTimeoutSeconds) + _options.RequestTimeout);
        Exception? streamError = null;
        var events = 0;
        try
        {
            var stream = _client.CoreV1.WatchListNamespacedPodAsync(_options.Namespace, allowWatchBookmarks: true,
                labelSelector: _options.LabelSelector, resourceVersion: pods.ResourceVersion.Length > 0 ? pods.ResourceVersion : null,
                timeoutSeconds: _options.WatchTimeoutSeconds,
                // The package reports ERROR events and unreadable lines here and reads on; stop at the first instead.
                onError: e =>
                {
                    streamError ??= e;
                    deadline.Cancel();
                },
                cancellationToken: deadline.Token);
            await foreach (var (type, pod) in stream)
            {
                if (events++ == 0)
                {
                    backoff.Reset();
                }
                Apply(pods, type, pod);
                if (output.Publish(pods.Engines(), force: false))
                {
                    LogEnginesChanged(output.Count, _options.Namespace, _options.LabelSelector);
                }
            }
        }
        catch (OperationCanceledException) when (streamError is not null)
        {
            // Stopped at the error, handled below.
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && deadline.IsCancellationRequested)
        {
            LogWatchDeadline(_options.WatchTimeoutSeconds);
        }
        catch (HttpRequestException e) when (e.InnerException is EndOfStreamException)
        {
            // The package waits for the first event before it returns the stream: this is a watch that ended without one.
        }

        if (streamError is not null)
        {
            if (KubernetesApiError.From(streamError) is { StatusCode: HttpStatusCode.Gone })
            {
                return WatchEnd.Expired;
            }
            ExceptionDispatchInfo.Throw(streamError);
        }
        backoff.Reset();
        return events > 0 ? WatchEnd.Progressed : WatchEnd.Quiet;
    }

    private void Apply(PodTable pods, WatchEventType type, V1Pod pod)
    {
        switch (type)
        {
            case WatchEventType.Added or WatchEventType.Modified when PodInfo.From(pod, _options.Port) is { } info:
                pods.Upsert(info);
                break;
            case WatchEventType.Deleted when PodInfo.From(pod, _options.Port) is { } info:
                pods.Remove(info.Key);
                break;
            case WatchEventType.Bookmark:
                break;
            default:
                LogIgnoredEvent(type);
                break;
        }
        pods.EventsSinceList++;
        if (pod.Metadata?.ResourceVersion is { Length: > 0 } resourceVersion)
        {
            pods.ResourceVersion = resourceVersion;
        }
    }

    private async Task DelayAfterFailureAsync(Exception failure, string verb, ReconnectBackoff backoff, CancellationToken cancellationToken)
    {
        var delay = backoff.NextDelay();
        switch (KubernetesApiError.From(failure))
        {
            case { StatusCode: HttpStatusCode.Forbidden } e:
                LogForbidden(verb, _options.Namespace, e.Message, delay);
                break;
            case { StatusCode: HttpStatusCode.Unauthorized } e:
                LogUnauthorized(verb, _options.Namespace, e.Message, _options.TokenPath, delay);
                break;
            case { } e:
                LogApiFailure(verb, _options.Namespace, (int)e.StatusCode, e.Message, delay);
                break;
            case null when failure is OperationCanceledException:
                LogTimedOut(verb, _options.Namespace, _options.RequestTimeout, delay);
                break;
            case null when failure is HttpRequestException or IOException or SocketException or JsonException:
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
