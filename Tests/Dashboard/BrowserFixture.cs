using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Dashboard;

/// <summary>One Chromium for a test class (starting one takes a second or two); each test opens a fresh context.</summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    private Browser? _browser;

    public Browser Browser => _browser ?? throw new InvalidOperationException("The browser did not start.");

    /// <summary>
    /// Where the tests write the README's screenshots, when CLUSTERQUEUE_SCREENSHOTS names a folder (relative to the
    /// repository root): CLUSTERQUEUE_SCREENSHOTS=docs ./test.sh --filter FullyQualifiedName~Dashboard.
    /// </summary>
    public static string? ScreenshotPath(string name) =>
        Environment.GetEnvironmentVariable("CLUSTERQUEUE_SCREENSHOTS") is { Length: > 0 } folder
            ? Path.Combine(Path.IsPathRooted(folder) ? folder : Path.Combine(Browser.RepositoryRoot(), folder), name)
            : null;

    public async Task InitializeAsync()
    {
        // Chromium is checked by the tests' attribute (CommandFact): without it, they skip (outside CI) before this matters.
        if (File.Exists(Browser.ChromiumPath) || RootFactAttribute.IsCi)
        {
            _browser = await Browser.StartAsync();
        }
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null)
        {
            await _browser.DisposeAsync();
        }
    }
}
