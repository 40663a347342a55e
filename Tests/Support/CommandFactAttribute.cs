namespace ClusterQueue.Tests.Support;

/// <summary>
/// A test that runs a program test.sh installs (strace, say). Outside CI, without the program, it is skipped with the
/// reason; under <c>CI=true</c> it always runs, and <see cref="Require"/> fails it: a CI run must never pass by skipping.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class CommandFactAttribute : FactAttribute
{
    public CommandFactAttribute(string command, string why)
    {
        if (Find(command) is null && !RootFactAttribute.IsCi)
        {
            Skip = $"Needs {command} on PATH ({why}); ./test.sh installs it. Under CI=true this test fails instead of skipping.";
        }
    }

    /// <summary>The program's full path; fails the test, saying why, when it is not on PATH (which only CI lets happen).</summary>
    public static string Require(string command, string why) =>
        Find(command) ?? throw new Xunit.Sdk.XunitException($"This test needs {command} on PATH ({why}) and CI=true forbids skipping it: ./test.sh installs it.");

    private static string? Find(string command) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, command))
            .FirstOrDefault(File.Exists);
}
