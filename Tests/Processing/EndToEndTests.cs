using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

public sealed class EndToEndTests
{
    [Fact]
    public async Task Ingest_ToForwardingGroup_DeliversBodyAndHeadersToTarget()
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("orders", GroupDefinitions.Forwarding(downstream, "/orders"));

        var id = await node.IngestOkAsync("orders", """{"order":1}""");

        await downstream.WaitUntilAsync(d => d.CallsTo("/orders").Count == 1, TimeSpan.FromSeconds(10), "one delivery");
        var call = downstream.CallsTo("/orders")[0];
        Assert.Equal(id, call.MessageId);
        Assert.Equal("orders", call.Group);
        Assert.Equal(1, call.Attempt);
        Assert.Equal("""{"order":1}""", System.Text.Encoding.UTF8.GetString(call.Body));
        Assert.StartsWith("application/json", call.ContentType);
    }
}
