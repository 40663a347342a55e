using System.Net.Http.Headers;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// The real node, in process, on a real SQLite file of its own. Requests go through ASP.NET's in-memory test
/// server; the node's handler calls go over real HTTP to a <see cref="Downstream"/>.
/// </summary>
public sealed class NodeHost : IAsyncDisposable
{
    public const string AdminToken = "test-admin-token";

    private readonly WebApplicationFactory<Program> _factory;
    private readonly TempDirectory? _ownedDirectory;

    private NodeHost(WebApplicationFactory<Program> factory, TempDirectory? ownedDirectory, string databasePath)
    {
        _factory = factory;
        _ownedDirectory = ownedDirectory;
        DatabasePath = databasePath;
        Client = factory.CreateClient();
        Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
    }

    /// <summary>Authorized for /v1 with the admin token.</summary>
    public HttpClient Client { get; }

    public string DatabasePath { get; }

    public IServiceProvider Services => _factory.Services;

    /// <summary>Starts a node. Settings override the test defaults (keys as in appsettings, e.g. "ClusterQueue:Processing:LeaseDuration").</summary>
    public static NodeHost Start(IDictionary<string, string?>? settings = null, string? databasePath = null)
    {
        var owned = databasePath is null ? new TempDirectory() : null;
        var path = databasePath ?? owned!.File("clusterqueue.db");
        var all = new Dictionary<string, string?>
        {
            ["ClusterQueue:Sqlite:Path"] = path,
            ["ClusterQueue:AdminToken"] = AdminToken,
            ["ClusterQueue:Processing:LeaseDuration"] = "00:00:05",
            ["ClusterQueue:Processing:DrainTimeout"] = "00:00:02",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }

        var factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            foreach (var (key, value) in all)
            {
                builder.UseSetting(key, value);
            }
        });
        var host = new NodeHost(factory, owned, path);
        _ = host.Services.GetRequiredService<TimeProvider>();
        return host;
    }

    public T Get<T>()
        where T : notnull => Services.GetRequiredService<T>();

    /// <summary>PUTs a group and fails the test unless it was accepted.</summary>
    public async Task<GroupResponse> DefineGroupAsync(string id, GroupDefinition definition)
    {
        using var response = await Client.PutAsJsonAsync($"/v1/groups/{id}", definition);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"PUT /v1/groups/{id} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        return (await response.Content.ReadFromJsonAsync<GroupResponse>())!;
    }

    /// <summary>POSTs a body to /hooks/{group} and returns the response (the caller disposes it).</summary>
    public Task<HttpResponseMessage> IngestAsync(string group, string body, string contentType = "application/json", IDictionary<string, string>? headers = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, $"/hooks/{group}") { Content = new StringContent(body, System.Text.Encoding.UTF8, contentType) };
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return Client.SendAsync(request);
    }

    /// <summary>Ingests and returns the message id, failing the test unless the answer is 202.</summary>
    public async Task<string> IngestOkAsync(string group, string body, IDictionary<string, string>? headers = null)
    {
        using var response = await IngestAsync(group, body, headers: headers);
        if (response.StatusCode != System.Net.HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"POST /hooks/{group} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }

        return (await response.Content.ReadFromJsonAsync<IngestAccepted>())!.MessageId;
    }

    /// <summary>
    /// Ingests <paramref name="count"/> small JSON messages (<c>{"n":i}</c>) and returns their ids by i. One sender keeps
    /// them in order; several share the node's group commits, so a large backlog is in place within a second or two.
    /// </summary>
    public async Task<string[]> IngestManyAsync(string group, int count, int senders = 1)
    {
        var ids = new string[count];
        if (senders == 1)
        {
            for (var i = 0; i < count; i++)
            {
                ids[i] = await IngestOkAsync(group, $$"""{"n":{{i}}}""");
            }

            return ids;
        }

        using var gate = new SemaphoreSlim(senders);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                ids[i] = await IngestOkAsync(group, $$"""{"n":{{i}}}""");
            }
            finally
            {
                gate.Release();
            }
        }));
        return ids;
    }

    public async Task<GroupStats> StatsAsync(string group) =>
        (await Client.GetFromJsonAsync<GroupStats>($"/v1/groups/{group}/stats"))!;

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _factory.DisposeAsync();
        _ownedDirectory?.Dispose();
    }
}
