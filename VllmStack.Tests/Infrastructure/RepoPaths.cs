using System.Reflection;

namespace VllmStack.Tests.Infrastructure;

/// <summary>Where the built programs are: integration tests start them as <c>dotnet X.dll</c>, never <c>dotnet run</c>.</summary>
public static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string Configuration { get; } =
        typeof(RepoPaths).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    public static string ProgramDll(string project)
    {
        var path = Path.Combine(Root, project, "bin", Configuration, "net10.0", project + ".dll");
        return File.Exists(path)
            ? path
            : throw new FileNotFoundException($"{path} is missing: build the solution ({Configuration}) before running the tests.", path);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "VllmStack.sln")))
            {
                return dir.FullName;
            }
        }
        throw new DirectoryNotFoundException("VllmStack.sln not found above " + AppContext.BaseDirectory);
    }
}
