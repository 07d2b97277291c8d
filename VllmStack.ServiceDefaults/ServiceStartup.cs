using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace VllmStack.ServiceDefaults;

/// <summary>The start-up steps every VllmStack service program shares.</summary>
public static class ServiceStartup
{
    /// <summary>Prints each configuration problem as <c>error: …</c> and gives exit code 2; 0 when there are none.</summary>
    public static async Task<int> ReportProblemsAsync(IReadOnlyCollection<string> problems)
    {
        foreach (var problem in problems)
        {
            await Console.Error.WriteLineAsync($"error: {problem}");
        }
        return problems.Count > 0 ? 2 : 0;
    }

    /// <summary>One line per log entry with a timestamp; the framework's per-request chatter only from warnings up.</summary>
    public static TBuilder UseConciseConsoleLogging<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("System.Net.Http.HttpClient", LogLevel.Warning);
        return builder;
    }

    /// <summary>
    /// Starts the app and prints <c>NAME listening on URL</c>: the line whatever started the service (the AppHost, tests)
    /// reads to learn the bound address, whatever the log settings.
    /// </summary>
    public static async Task<string> StartAndAnnounceAsync(this WebApplication app, string name, CancellationToken cancellationToken = default)
    {
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Console.Out.WriteLine($"{name} listening on {address}");
        await Console.Out.FlushAsync(cancellationToken).ConfigureAwait(false);
        return address;
    }
}
