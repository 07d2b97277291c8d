#pragma warning disable ASPIREPIPELINES001, ASPIREPIPELINES004 // Aspire 13.6's pipeline step context and output service are experimental; they are how a step publishes.
using Aspire.Hosting.Pipelines;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace VllmStack.Hosting.Kubernetes;

/// <summary>
/// The <c>publish-NAME</c> pipeline step: reads the options, writes the model as Kubernetes manifests into Aspire's output
/// folder (<c>--output-path</c>, else the AppHost's <c>aspire-output</c>), and says what to do next.
/// </summary>
/// <remarks>
/// A mistake the user can fix (<see cref="KubernetesPublishException"/>: a bad option, a resource without a Kubernetes
/// form) fails the step with its one-line reason and no stack trace, and the AppHost exits with code 2; any other
/// failure is a bug, reported by Aspire with its stack trace, and the AppHost exits with code 1. (Aspire itself ends a
/// directly run AppHost whose pipeline failed with code 0; the Aspire CLI reads the step's state instead.)
/// </remarks>
internal sealed class KubernetesPublisher(KubernetesEnvironmentResource environment, IConfiguration configuration)
{
    /// <summary>Exit code of the AppHost when publishing failed for a reason the user can fix.</summary>
    public const int UserErrorExitCode = 2;

    /// <summary>Runs the step.</summary>
    public async Task PublishAsync(PipelineStepContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var cancellationToken = context.CancellationToken;
        try
        {
            var options = environment.Options;
            options.Apply(configuration);
            var outputPath = Path.GetFullPath(context.Services.GetRequiredService<IPipelineOutputService>().GetOutputDirectory());
            var builder = new ManifestBuilder(context.Model, context.ExecutionContext, options, context.Logger);
            var result = await builder.WriteAsync(outputPath, cancellationToken).ConfigureAwait(false);
            Report(context, result);
        }
        catch (KubernetesPublishException e)
        {
            // Written at once to stderr, as a command line's user error is: the console logger writes from a queue, and
            // a process that ends right after a failed publish could lose the one line that says what to fix.
            await Console.Error.WriteLineAsync($"Kubernetes publish failed: {e.Message}").ConfigureAwait(false);
            Environment.ExitCode = UserErrorExitCode;
            await context.ReportingStep.FailAsync(e.Message, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            Environment.ExitCode = 1;
            throw;
        }
    }

    private static void Report(PipelineStepContext context, PublishResult result)
    {
        var logger = context.Logger;
        foreach (var warning in result.Warnings)
        {
            logger.LogWarning("{Warning}", warning);
        }
        logger.LogInformation("Wrote {Count} files for Kubernetes to {OutputPath}", result.Files.Count, result.OutputPath);
        logger.LogInformation("Next: build and push the images {Images} (dotnet publish -t:PublishContainer), fill {SecretsFile}, then run: kubectl apply -k {OutputPath}",
            string.Join(", ", result.Images), Path.Combine(result.OutputPath, SecretsFile.Name), result.OutputPath);
        context.Summary.Add("Kubernetes manifests", result.OutputPath);
        context.Summary.Add("Install", $"kubectl apply -k {result.OutputPath}");
    }
}
