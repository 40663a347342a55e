using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// The node in process behind real Kestrel on a loopback port: request size limits, chunked framing and the rules on
/// which statuses may carry a body are Kestrel's own, which the in-memory server of <see cref="NodeHost"/> does not
/// reproduce.
/// </summary>
public sealed class KestrelNode : IAsyncDisposable
{
    private readonly TempDirectory _directory = new();
    private readonly WebApplicationFactory<Program> _factory;

    public KestrelNode(IDictionary<string, string?>? settings = null)
    {
        _factory = new WebApplicationFactory<Program>().WithWebHostBuilder(builder =>
        {
            builder.UseSetting("urls", "http://127.0.0.1:0");
            builder.UseSetting("ClusterQueue:Sqlite:Path", _directory.File("clusterqueue.db"));
            builder.UseSetting("ClusterQueue:AdminToken", NodeHost.AdminToken);
            builder.UseSetting("Logging:LogLevel:Default", "Warning");
            foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            {
                builder.UseSetting(key, value);
            }
        });
        _factory.UseKestrel();
        _factory.StartServer();
        Client = _factory.CreateClient();
        Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", NodeHost.AdminToken);
    }

    /// <summary>Authorized for /v1 with the admin token.</summary>
    public HttpClient Client { get; }

    /// <summary>The node's address, for raw connections.</summary>
    public Uri BaseAddress => Client.BaseAddress!;

    public IServiceProvider Services => _factory.Services;

    public async Task DefineGroupAsync(string id, GroupDefinition definition)
    {
        using var response = await Client.PutAsJsonAsync($"/v1/groups/{id}", definition);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    public async Task<GroupStats> StatsAsync(string group) =>
        (await Client.GetFromJsonAsync<GroupStats>($"/v1/groups/{group}/stats"))!;

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _factory.DisposeAsync();
        _directory.Dispose();
    }
}
