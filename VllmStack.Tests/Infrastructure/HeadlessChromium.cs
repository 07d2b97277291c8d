using Microsoft.Playwright;

namespace VllmStack.Tests.Infrastructure;

/// <summary>
/// Debian's chromium driven by Playwright's bundled node driver. Nothing is downloaded: the browser is the
/// system one (<c>apt-get install -y chromium</c>), so <c>playwright install</c> is never needed.
/// </summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    public const string ExecutablePath = "/usr/bin/chromium";

    // Containers have no user namespaces for the sandbox, no GPU and a small /dev/shm; the rest keeps chromium
    // from calling home, which would only wait for timeouts on a machine without internet.
    private static readonly string[] Args =
    [
        "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
    ];

    private readonly IPlaywright _playwright;
    private readonly IBrowser _browser;

    private HeadlessChromium(IPlaywright playwright, IBrowser browser)
    {
        _playwright = playwright;
        _browser = browser;
    }

    public static async Task<HeadlessChromium> LaunchAsync()
    {
        if (!File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException($"{ExecutablePath} is missing: install it with 'apt-get install -y chromium'.");
        }
        var playwright = await Playwright.CreateAsync();
        try
        {
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = ExecutablePath,
                Headless = true,
                Args = Args,
                Timeout = 30_000,
            });
            return new HeadlessChromium(playwright, browser);
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    /// <summary>A page in a fresh context, wide enough for the dashboard's table; actions wait at most <paramref name="timeout"/>.</summary>
    public async Task<IPage> NewPageAsync(TimeSpan timeout)
    {
        var page = await _browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1440, Height = 900 } });
        page.SetDefaultTimeout((float)timeout.TotalMilliseconds);
        page.SetDefaultNavigationTimeout((float)timeout.TotalMilliseconds);
        return page;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _browser.DisposeAsync();
        }
        finally
        {
            _playwright.Dispose();
        }
    }
}
