using VllmStack.Router.Configuration;

namespace VllmStack.Router.Health;

/// <summary>The HttpClient for control calls to engines (models, health, metrics): pooled, short timeout, engine key attached.</summary>
public sealed class EngineControlClient
{
    public const string HttpClientName = "engine-control";

    private readonly IHttpClientFactory _factory;
    private readonly RouterOptions _options;

    public EngineControlClient(IHttpClientFactory factory, RouterOptions options)
    {
        _factory = factory;
        _options = options;
    }

    public async Task<(bool Ok, string Body)> GetAsync(Uri engine, string path, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(_options.ControlTimeout));
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(engine, path));
        if (_options.Forwarding.EngineApiKey is { Length: > 0 } key)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        }
        try
        {
            using var response = await _factory.CreateClient(HttpClientName).SendAsync(request, timeout.Token).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(timeout.Token).ConfigureAwait(false);
            return (response.IsSuccessStatusCode, body);
        }
        catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return (false, e.Message);
        }
    }
}
