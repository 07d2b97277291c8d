using System.Reflection;
using VllmStack.Hosting.Builder;

namespace VllmStack.Hosting.Testing;

/// <summary>An application model that a real AppHost runs and that tests can build too.</summary>
public interface IDistributedApplicationModel
{
    static abstract void Configure(DistributedApplicationBuilder builder);
}

/// <summary>
/// In the spirit of Aspire's <c>DistributedApplicationTestingBuilder</c>: the AppHost's own model, adjustable
/// before it starts, with every port allocated, no dashboard, no console table, and nothing left running after
/// dispose.
/// </summary>
public static class DistributedApplicationTestingBuilder
{
    public static DistributedApplicationBuilder Create<TModel>(params string[] args) where TModel : IDistributedApplicationModel
    {
        var builder = CreateEmpty(typeof(TModel).Assembly, args);
        TModel.Configure(builder);
        return builder;
    }

    /// <summary>A builder for a model assembled in the test itself; <paramref name="appHost"/> holds the project paths.</summary>
    public static DistributedApplicationBuilder CreateEmpty(Assembly appHost, params string[] args) =>
        new(args, new DistributedApplicationOptions { DashboardUrl = null, RandomizePorts = true, ConsoleOutput = false }, appHost);
}
