namespace ClusterQueue.Tests.Support;

/// <summary>
/// A test that needs root (to mount a file system, say). Outside CI a user without root sees it skipped with the
/// reason; under <c>CI=true</c> it always runs, and <see cref="Require"/> fails it: a CI run must never pass by
/// skipping what it could not do.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute(string why)
    {
        if (!Environment.IsPrivilegedProcess && !IsCi)
        {
            Skip = $"Needs root ({why}); run the tests as root, as CI does. Under CI=true this test fails instead of skipping.";
        }
    }

    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>Fails the test, saying why, when it runs without root (which only CI lets happen).</summary>
    public static void Require(string why)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Assert.Fail($"This test needs root ({why}) and CI=true forbids skipping it: run the tests as root.");
        }
    }
}
