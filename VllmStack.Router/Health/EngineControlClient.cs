using VllmStack.Router.Configuration;

namespace VllmStack.Router.Health;

/// <summary>The HttpClient for control calls to engines (models, health, metrics, adapter loads): pooled, bounded, engine key attached.</summary>
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
        var (status, body) = await SendAsync(HttpMethod.Get, engine, path, null, TimeSpan.FromSeconds(_options.ControlTimeout), cancellationToken).ConfigureAwait(false);
        return (status is >= 200 and < 300, body);
    }

    /// <summary>
    /// Posts a JSON body (e.g. vLLM's <c>/v1/load_lora_adapter</c>); returns the status and body, or status 0 and the reason
    /// when the engine could not be reached or did not answer within <paramref name="timeout"/>.
    /// </summary>
    public Task<(int Status, string Body)> PostJsonAsync(Uri engine, string path, string json, TimeSpan timeout, CancellationToken cancellationToken) =>
        SendAsync(HttpMethod.Post, engine, path, json, timeout, cancellationToken);

    private async Task<(int Status, string Body)> SendAsync(HttpMethod method, Uri engine, string path, string? json, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(timeout);
        using var request = new HttpRequestMessage(method, new Uri(engine, path));
        if (json is not null)
        {
            request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        }
        if (_options.Forwarding.EngineApiKey is { Length: > 0 } key)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        }
        try
        {
            using var response = await _factory.CreateClient(HttpClientName).SendAsync(request, bounded.Token).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(bounded.Token).ConfigureAwait(false);
            return ((int)response.StatusCode, body);
        }
        catch (Exception e) when (e is HttpRequestException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return (0, e is OperationCanceledException ? $"no answer within {timeout.TotalSeconds:0.#} s" : e.Message);
        }
    }
}
