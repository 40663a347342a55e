using System.Net;
using System.Text.Json;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Observability;

public sealed class ObservabilityEndpointsTests
{
    [Fact]
    public async Task DebugGc_WithAdminToken_ReturnsLiveHeapAndWorkingSet()
    {
        await using var node = NodeHost.Start();

        using var response = await node.Client.PostAsync("/v1/debug/gc", content: null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(body.GetProperty("heapBytes").GetInt64() > 0);
        Assert.True(body.GetProperty("workingSetBytes").GetInt64() > 0);
    }
}
