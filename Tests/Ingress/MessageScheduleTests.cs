using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Ingress;

/// <summary>How ingress reads a message's delay: the edges of ?delay= and ClusterQueue-Delay.</summary>
public sealed class MessageScheduleTests
{
    [Theory]
    [InlineData("?delay=0.0000001", null, "delay")]
    [InlineData("?delay=0.000000001", null, "delay")]
    [InlineData("?delay=0.0009", null, "delay")]
    [InlineData("", "0.00000001", "ClusterQueue-Delay")]
    public async Task Ingest_WithPositiveDelayBelowOneMillisecond_Is400NamingItAndStoresNothing(string query, string? header, string field)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("later", GroupDefinitions.Forwarding(downstream, "/later"));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/hooks/later" + query) { Content = new StringContent("{}") };
        if (header is not null)
        {
            request.Headers.TryAddWithoutValidation(field, header);
        }

        using var response = await node.Client.SendAsync(request);

        await Problems.AssertValidationErrorAsync(response, field);
        Assert.Equal(0, (await node.StatsAsync("later")).Ingested);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("0.000")]
    [InlineData("0.001")]
    public async Task Ingest_WithDelayOfZeroOrOneMillisecond_IsAcceptedAndDelivered(string delay)
    {
        await using var downstream = await Downstream.StartAsync();
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("later", GroupDefinitions.Forwarding(downstream, "/later"));

        using var response = await node.Client.PostAsync($"/hooks/later?delay={delay}", new StringContent("{}"));

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var id = (await response.Content.ReadFromJsonAsync<IngestAccepted>())!.MessageId;
        await Eventually.ReadAsync(
            () => node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!,
            s => s!.State == "delivered",
            "the delivery");
        Assert.Single(downstream.CallsTo("/later"));
    }
}
