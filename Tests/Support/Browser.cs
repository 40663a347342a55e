using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// Headless Debian Chromium, driven by playwright-core through tools/dashboard/browser.mjs (one JSON command a line).
/// One browser per instance; <see cref="OpenAsync"/> starts a fresh context (empty sessionStorage, no cookies) whose
/// every request is recorded. Selectors are Playwright's (CSS, plus :has-text() and the like).
/// </summary>
public sealed class Browser : IAsyncDisposable
{
    /// <summary>Debian's package puts it here; CHROMIUM_PATH names another.</summary>
    public static string ChromiumPath => Environment.GetEnvironmentVariable("CHROMIUM_PATH") is { Length: > 0 } path ? path : "/usr/bin/chromium";

    private static readonly TimeSpan DefaultWait = TimeSpan.FromSeconds(20);

    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly SemaphoreSlim _turn = new(1, 1);
    private int _next;

    private Browser(Process process)
    {
        _process = process;
        _process.ErrorDataReceived += (_, e) =>
        {
            lock (_stderr)
            {
                _stderr.AppendLine(e.Data);
            }
        };
        _process.BeginErrorReadLine();
    }

    /// <summary>Starts Chromium; fails (never skips) when it or the npm tools are missing, saying what to run.</summary>
    public static async Task<Browser> StartAsync()
    {
        Assert.True(File.Exists(ChromiumPath), $"No Chromium at {ChromiumPath}: ./test.sh installs Debian's chromium package (or set CHROMIUM_PATH).");
        var tools = Path.Combine(RepositoryRoot(), "tools", "dashboard");
        Assert.True(
            Directory.Exists(Path.Combine(tools, "node_modules", "playwright-core")),
            "tools/dashboard/node_modules lacks playwright-core: run ./test.sh, or 'npm ci --prefix tools/dashboard' once.");
        var start = new ProcessStartInfo("node")
        {
            ArgumentList = { Path.Combine(tools, "browser.mjs") },
            WorkingDirectory = tools,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardInputEncoding = new UTF8Encoding(false),
            UseShellExecute = false,
            Environment = { ["CHROMIUM_PATH"] = ChromiumPath },
        };
        var browser = new Browser(Process.Start(start)!);
        await browser.OpenAsync();
        return browser;
    }

    /// <summary>A fresh context and page: nothing kept from before (sessionStorage, cookies, recorded requests).</summary>
    public Task OpenAsync(int width = 1400, int height = 900) => SendAsync(new() { ["op"] = "open", ["width"] = width, ["height"] = height });

    public Task GotoAsync(Uri url) => SendAsync(new() { ["op"] = "goto", ["url"] = url.ToString() });

    /// <summary>Waits until an element matching the selector contains the text.</summary>
    public Task WaitTextAsync(string selector, string text, TimeSpan? timeout = null) =>
        SendAsync(new() { ["op"] = "waitText", ["selector"] = selector, ["text"] = text, ["timeout"] = (timeout ?? DefaultWait).TotalMilliseconds });

    public Task WaitVisibleAsync(string selector, TimeSpan? timeout = null) =>
        SendAsync(new() { ["op"] = "waitVisible", ["selector"] = selector, ["timeout"] = (timeout ?? DefaultWait).TotalMilliseconds });

    public Task WaitHiddenAsync(string selector, TimeSpan? timeout = null) =>
        SendAsync(new() { ["op"] = "waitHidden", ["selector"] = selector, ["timeout"] = (timeout ?? DefaultWait).TotalMilliseconds });

    public Task WaitCountAsync(string selector, int count, TimeSpan? timeout = null) =>
        SendAsync(new() { ["op"] = "waitCount", ["selector"] = selector, ["count"] = count, ["timeout"] = (timeout ?? DefaultWait).TotalMilliseconds });

    public async Task<string> TextAsync(string selector) => (await SendAsync(new() { ["op"] = "text", ["selector"] = selector })).GetString()!;

    public async Task<List<string>> TextsAsync(string selector) =>
        [.. (await SendAsync(new() { ["op"] = "texts", ["selector"] = selector })).EnumerateArray().Select(e => e.GetString()!)];

    public async Task<int> CountAsync(string selector) => (await SendAsync(new() { ["op"] = "count", ["selector"] = selector })).GetInt32();

    public async Task<string?> AttributeAsync(string selector, string name) =>
        (await SendAsync(new() { ["op"] = "attribute", ["selector"] = selector, ["name"] = name })).GetString();

    public Task ClickAsync(string selector) => SendAsync(new() { ["op"] = "click", ["selector"] = selector });

    public Task CheckAsync(string selector) => SendAsync(new() { ["op"] = "check", ["selector"] = selector });

    public Task FillAsync(string selector, string value) => SendAsync(new() { ["op"] = "fill", ["selector"] = selector, ["value"] = value });

    public Task PressAsync(string selector, string key) => SendAsync(new() { ["op"] = "press", ["selector"] = selector, ["key"] = key });

    /// <summary>Evaluates a JavaScript expression in the page (a promise is awaited) and returns its JSON value.</summary>
    public Task<JsonElement> EvaluateAsync(string expression) => SendAsync(new() { ["op"] = "evaluate", ["expression"] = expression });

    public Task ScreenshotAsync(string path, bool fullPage = false) => SendAsync(new() { ["op"] = "screenshot", ["path"] = path, ["fullPage"] = fullPage });

    /// <summary>Every URL the context's pages requested since <see cref="OpenAsync"/>.</summary>
    public async Task<List<string>> RequestsAsync() => [.. (await SendAsync(new() { ["op"] = "requests" })).EnumerateArray().Select(e => e.GetString()!)];

    /// <summary>Uncaught errors and console errors of the page since <see cref="OpenAsync"/>.</summary>
    public async Task<List<string>> ErrorsAsync() => [.. (await SendAsync(new() { ["op"] = "errors" })).EnumerateArray().Select(e => e.GetString()!)];

    private async Task<JsonElement> SendAsync(JsonObject command)
    {
        await _turn.WaitAsync();
        try
        {
            var id = ++_next;
            command["id"] = id;
            await _process.StandardInput.WriteLineAsync(command.ToJsonString());
            await _process.StandardInput.FlushAsync();
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            var line = await _process.StandardOutput.ReadLineAsync(deadline.Token);
            if (line is null)
            {
                throw new Xunit.Sdk.XunitException($"The browser driver exited: {Stderr()}");
            }

            using var answer = JsonDocument.Parse(line);
            var root = answer.RootElement;
            if (!root.GetProperty("ok").GetBoolean())
            {
                throw new Xunit.Sdk.XunitException($"{command["op"]} failed: {root.GetProperty("error").GetString()}");
            }

            return root.GetProperty("value").Clone();
        }
        finally
        {
            _turn.Release();
        }
    }

    private string Stderr()
    {
        lock (_stderr)
        {
            return _stderr.ToString();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            _process.StandardInput.Close();
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
        _turn.Dispose();
    }

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ClusterQueue.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No ClusterQueue.sln above {AppContext.BaseDirectory}.");
    }
}
