using VllmStack.Hosting.Common;

namespace VllmStack.Tests.Hosting;

/// <summary>The probe runner behind redis-server and Garnet detection, against real <c>sh</c> processes.</summary>
public sealed class ExecutablesTests
{
    [Fact]
    public void Output_holds_every_line_even_when_written_after_the_command_exited()
    {
        // sh exits at once; the line from the child it leaves behind arrives later through the same pipe.
        var output = Executables.Output("sh", ["-c", "(sleep 0.5; echo late) & echo early"], null, TimeSpan.FromSeconds(10));

        Assert.Equal($"early{Environment.NewLine}late{Environment.NewLine}", output);
    }

    [Fact]
    public void Output_is_null_for_a_failing_command_and_for_one_past_its_timeout()
    {
        Assert.Null(Executables.Output("sh", ["-c", "echo partial; exit 3"], null, TimeSpan.FromSeconds(10)));
        Assert.Null(Executables.Output("sh", ["-c", "sleep 30"], null, TimeSpan.FromMilliseconds(300)));
        Assert.Null(Executables.Output("/nonexistent/program", [], null, TimeSpan.FromSeconds(10)));
    }
}
