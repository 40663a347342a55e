using ClusterQueue.Contracts;
using System.Net.Http.Json;
using ClusterQueue.Node.Processing;
using ClusterQueue.Tests.Cluster;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>Adaptive back-pressure: the AIMD arithmetic, and a group against a target that refuses for a while.</summary>
public sealed class AdaptiveRateTests(PostgresServer server, SqsEmulator emulator) : IClassFixture<PostgresServer>, IClassFixture<SqsEmulator>
{
    private static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void TwoRefusalsInARow_Halve_AtMostOnceASecond_NotBelowTheFloor()
    {
        var rate = new AdaptiveRate(40, new AdaptiveRateSettings(0.5, 4, 8), Start);

        Assert.False(rate.Refused(Start));
        Assert.Equal(40, rate.Effective);
        Assert.True(rate.Refused(Start));
        Assert.Equal(20, rate.Effective);

        // The same overload's other refusals within the second do not count again.
        Assert.False(rate.Refused(Start + TimeSpan.FromMilliseconds(500)));
        Assert.Equal(20, rate.Effective);
        Assert.True(rate.Refused(Start + TimeSpan.FromSeconds(1)));
        Assert.Equal(10, rate.Effective);
        Assert.True(rate.Refused(Start + TimeSpan.FromSeconds(2)));
        Assert.Equal(8, rate.Effective);
        Assert.False(rate.Refused(Start + TimeSpan.FromSeconds(3)));
        Assert.Equal(8, rate.Effective);
    }

    [Fact]
    public void ASuccessBetweenRefusals_StartsTheCountAgain()
    {
        var rate = new AdaptiveRate(40, new AdaptiveRateSettings(0.5, 4, 1), Start);

        rate.Refused(Start);
        rate.Succeeded(Start);
        Assert.False(rate.Refused(Start));
        Assert.Equal(40, rate.Effective);
    }

    [Fact]
    public void Successes_RaiseTheRateByIncreasePerSecond_UpToTheConfiguredRate()
    {
        var rate = new AdaptiveRate(40, new AdaptiveRateSettings(0.5, 4, 1), Start);
        rate.Refused(Start);
        rate.Refused(Start);
        Assert.Equal(20, rate.Effective);

        Assert.True(rate.Succeeded(Start + TimeSpan.FromSeconds(2)));
        Assert.Equal(28, rate.Effective, precision: 9);
        Assert.True(rate.Succeeded(Start + TimeSpan.FromSeconds(3)));
        Assert.Equal(32, rate.Effective, precision: 9);
        Assert.True(rate.Succeeded(Start + TimeSpan.FromSeconds(10)));
        Assert.Equal(40, rate.Effective);
        Assert.False(rate.Succeeded(Start + TimeSpan.FromSeconds(20)));
        Assert.Equal(40, rate.Effective);
    }

    [Fact]
    public void Reconfigure_KeepsTheEffectiveRateWithinTheNewBounds()
    {
        var rate = new AdaptiveRate(40, new AdaptiveRateSettings(0.5, 4, 1), Start);
        rate.Refused(Start);
        rate.Refused(Start);

        rate.Reconfigure(10, new AdaptiveRateSettings(0.5, 4, 1));
        Assert.Equal(10, rate.Effective);
        rate.Reconfigure(100, new AdaptiveRateSettings(0.5, 4, 50));
        Assert.Equal(50, rate.Effective);
    }

    [Fact]
    public void Settings_DefaultFromTheRate_AndEnabledFalseTurnsItOff()
    {
        Assert.Equal(new AdaptiveRateSettings(0.5, 2, 0.2), AdaptiveRateSettings.From(new AdaptiveRateDefinition(), 20));
        Assert.Null(AdaptiveRateSettings.From(new AdaptiveRateDefinition { Enabled = false }, 20));
        Assert.Null(AdaptiveRateSettings.From(null, 20));
    }

    [Fact]
    public Task RefusingTarget_LowersTheEffectiveRate_ShownInStatsAndMetrics_ThenItRecoversToTheConfiguredRate() =>
        LowersAndRecoversAsync(NodeHost.Start());

    [Fact]
    public Task Sqs_RefusingTarget_LowersAndRecovers() =>
        LowersAndRecoversAsync(NodeHost.Start(SqsNode.Settings(emulator.Endpoint)));

    private static async Task LowersAndRecoversAsync(NodeHost host)
    {
        await using var node = host;
        await using var downstream = await Downstream.StartAsync();
        var refusing = true;
        downstream.Reply = _ => Volatile.Read(ref refusing) ? new DownstreamReply(429) : DownstreamReply.Ok;
        var definition = GroupDefinitions.Forwarding(downstream, "/pressed", rate: 20, burst: 2, concurrency: 4) with
        {
            MaxAttempts = 1000,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.05, MaxSeconds = 0.1 },
            AdaptiveRate = new AdaptiveRateDefinition { DecreaseFactor = 0.5, IncreasePerSecond = 10, MinRatePerSecond = 1 },
        };
        var group = await node.DefineGroupAsync("pressed", definition);
        Assert.Equal(new AdaptiveRateDefinition { Enabled = true, DecreaseFactor = 0.5, IncreasePerSecond = 10, MinRatePerSecond = 1 }, group.AdaptiveRate);
        await node.IngestManyAsync("pressed", 200);

        var lowered = await Eventually.ReadAsync(() => node.StatsAsync("pressed"), s => s.EffectiveRatePerSecond < 20, "the rate lowered by the 429s");
        Assert.InRange(lowered.EffectiveRatePerSecond!.Value, 1, 10);
        Assert.Contains("clusterqueue_effective_rate{group=\"pressed\"}", await node.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);

        Volatile.Write(ref refusing, false);
        var recovered = await Eventually.ReadAsync(() => node.StatsAsync("pressed"), s => s.EffectiveRatePerSecond == 20, "the rate back at 20/s", TimeSpan.FromSeconds(20));
        Assert.Equal(20, recovered.RatePerSecond);
        Assert.DoesNotContain("clusterqueue_effective_rate{group=\"pressed\"}", await node.Client.GetStringAsync("/metrics"), StringComparison.Ordinal);

        // Never above the configured rate: the arrivals stay within the group's own bucket throughout (with the slack
        // a fresh node's first calls need: they open connections and compile, so they arrive bunched).
        BucketAssert.WithinBucket("pressed", 20, 2, downstream.Arrivals("/pressed"), TimeSpan.FromMilliseconds(150));
    }

    [Fact]
    public async Task Cluster_TheOwnerLowersAndRecoversTheRate()
    {
        string[] nodes = ["node-a", "node-b"];
        await using var downstream = await Downstream.StartAsync();
        var refusing = true;
        downstream.Reply = _ => Volatile.Read(ref refusing) ? new DownstreamReply(503) : DownstreamReply.Ok;
        await using var cluster = await ClusterRig.CreateAsync(server);
        await cluster.StartAllAsync(nodes);
        var group = ClusterRig.GroupOwnedBy("node-b", nodes, "pressed");
        await ClusterTests.DefineAsync(cluster["node-a"], group, GroupDefinitions.Forwarding(downstream, $"/{group}", rate: 20, burst: 2, concurrency: 4) with
        {
            MaxAttempts = 1000,
            RetryBackoff = new RetryBackoffDefinition { InitialSeconds = 0.05, MaxSeconds = 0.1 },
            AdaptiveRate = new AdaptiveRateDefinition { IncreasePerSecond = 10 },
        });
        for (var i = 0; i < 40; i++)
        {
            await ClusterTests.IngestAsync(cluster["node-a"], group, "{}");
        }

        Task<GroupStats> OwnerStats() => cluster["node-b"].Client.GetFromJsonAsync<GroupStats>($"/v1/groups/{group}/stats")!;
        var lowered = await Eventually.ReadAsync(OwnerStats, s => s.EffectiveRatePerSecond < 20, "the rate lowered on the owner", TimeSpan.FromSeconds(20));
        Assert.InRange(lowered.EffectiveRatePerSecond!.Value, 0.2, 10);

        Volatile.Write(ref refusing, false);
        await Eventually.ReadAsync(OwnerStats, s => s.EffectiveRatePerSecond == 20 || s.Queued == 0, "the rate back at 20/s", TimeSpan.FromSeconds(30));
        await downstream.WaitUntilAsync(d => d.CallsTo($"/{group}").Count(c => c.Node == "node-b") >= 40, TimeSpan.FromSeconds(30), "the calls");
        Assert.All(downstream.CallsTo($"/{group}"), c => Assert.Equal("node-b", c.Node));
    }

    [Theory]
    [InlineData("""{"decreaseFactor":1.5}""", "adaptiveRate.decreaseFactor")]
    [InlineData("""{"increasePerSecond":0}""", "adaptiveRate.increasePerSecond")]
    [InlineData("""{"minRatePerSecond":50}""", "adaptiveRate.minRatePerSecond")]
    public async Task InvalidAdaptiveRate_Is400NamingTheField(string adaptive, string field)
    {
        await using var node = NodeHost.Start();
        var json = $$"""{"ratePerSecond":20,"burst":1,"maxConcurrency":1,"target":{"url":"http://127.0.0.1:9/"},"adaptiveRate":{{adaptive}}}""";

        using var response = await node.Client.PutAsync("/v1/groups/bad", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

        await Problems.AssertValidationErrorAsync(response, field);
    }
}
