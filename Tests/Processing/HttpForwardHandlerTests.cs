using ClusterQueue.Node.Groups;
using ClusterQueue.Node.Processing;
using ClusterQueue.Node.Queueing;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Processing;

/// <summary>The forwarding handler's reading of a continuation and of a waited-for result, against a real downstream on loopback.</summary>
public sealed class HttpForwardHandlerTests : IAsyncLifetime
{
    private Downstream _downstream = null!;
    private readonly HttpClient _client = new();

    [Theory]
    [InlineData(1)]
    [InlineData(HttpForwardHandler.MaxCursorLength)]
    public async Task Continue_WithAVisibleAsciiCursorUpToTheCap_ContinuesWithIt(int length)
    {
        var cursor = new string('~', length - 1) + "!";
        _downstream.Reply = _ => new DownstreamReply(202, Continue: cursor);

        var outcome = await HandleAsync(Message());

        Assert.Equal(new HandlerOutcome.Continue(cursor, 202), outcome);
    }

    [Theory]
    [InlineData("x", HttpForwardHandler.MaxCursorLength + 1)]
    [InlineData("a b", 1)]
    [InlineData("tab\there", 1)]
    public async Task Continue_WithACursorOverTheCapOrNotVisibleAscii_IsAFailedAttemptSayingSo(string part, int repeat)
    {
        _downstream.Reply = _ => new DownstreamReply(200, Continue: string.Concat(Enumerable.Repeat(part, repeat)));

        var outcome = await HandleAsync(Message());

        var failed = Assert.IsType<HandlerOutcome.Failed>(outcome);
        Assert.Equal(200, failed.Status);
        Assert.Contains(HttpForwardHandler.ContinueHeader, failed.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Continue_OnAFailureStatus_IsThatFailure_NotAStep()
    {
        _downstream.Reply = _ => new DownstreamReply(500, Continue: "c1");

        var outcome = await HandleAsync(Message());

        Assert.Equal(500, Assert.IsType<HandlerOutcome.Failed>(outcome).Status);
    }

    [Fact]
    public async Task Call_OfAContinuedMessage_CarriesItsStepAndCursor_AndTheFirstCarriesNeither()
    {
        _downstream.Reply = _ => DownstreamReply.Ok;

        await HandleAsync(Message());
        await HandleAsync(Message() with { Step = 3, Cursor = "page=3" });

        var calls = _downstream.CallsTo("/t");
        Assert.Equal([(null, 0), ("page=3", 3)], calls.Select(c => (c.Cursor, c.Step)));
    }

    [Fact]
    public async Task Call_CarriesTheTimeItStarted_ToTheTick_InUtc()
    {
        _downstream.Reply = _ => DownstreamReply.Ok;
        // Not UTC and not a whole millisecond: the header must carry the instant, not the local rendering of it.
        var startedAt = new DateTimeOffset(2026, 12, 5, 20, 1, 2, TimeSpan.FromHours(2)).AddTicks(1_234_567);

        await HandleAsync(Message(), startedAt: startedAt);

        var call = Assert.Single(_downstream.CallsTo("/t"));
        Assert.Equal(startedAt, call.StartedAt);
        Assert.Equal(TimeSpan.Zero, call.StartedAt!.Value.Offset);
    }

    [Fact]
    public async Task Delivered_KeepsTheAnswer_OnlyForAMessageThatWantsIt_AndNoBodyOverTheCap()
    {
        _downstream.Reply = _ => new DownstreamReply(201, Body: "0123456789", ContentType: "text/plain");

        var plain = await HandleAsync(Message());
        var wanted = await HandleAsync(Message() with { WantsResult = true }, maxResultBytes: 10);
        var tooLarge = await HandleAsync(Message() with { WantsResult = true }, maxResultBytes: 9);

        Assert.Null(Assert.IsType<HandlerOutcome.Delivered>(plain).Result);
        var kept = Assert.IsType<HandlerOutcome.Delivered>(wanted).Result!;
        Assert.Equal((201, "text/plain", "0123456789"), (kept.Status, kept.ContentType, System.Text.Encoding.UTF8.GetString(kept.Body!)));
        Assert.Equal(new DeliveryResult(201, "text/plain", null), Assert.IsType<HandlerOutcome.Delivered>(tooLarge).Result);
    }

    [Fact]
    public async Task Redirect_FollowedByAClientThatFollowsThem_IsStillAFailedAttempt_NotADelivery()
    {
        // The node's own client never follows redirects; a handler given one that does must not take the answer of
        // wherever the redirect led for the target's.
        var (target, address) = await LoopbackServer.StartAsync(context =>
        {
            context.Response.StatusCode = 307;
            context.Response.Headers.Location = _downstream.Url("/elsewhere");
            return Task.CompletedTask;
        });
        await using var _ = target;
        var now = DateTimeOffset.UtcNow;
        var group = GroupSettings.FromValidDefinition("g", GroupDefinitions.Forwarding(_downstream, "/t") with
        {
            Target = new ClusterQueue.Contracts.TargetDefinition { Url = new Uri(address, "/hook").ToString() },
        }, now, now);

        var outcome = await new HttpForwardHandler(_client, TimeProvider.System, "node-x").HandleAsync(new Delivery(Message(), group, DateTimeOffset.UtcNow), CancellationToken.None);

        var failed = Assert.IsType<HandlerOutcome.Failed>(outcome);
        Assert.Contains(_downstream.Url("/elsewhere"), failed.Error, StringComparison.Ordinal);
    }

    public async Task InitializeAsync() => _downstream = await Downstream.StartAsync();

    public async Task DisposeAsync()
    {
        _client.Dispose();
        await _downstream.DisposeAsync();
    }

    private static LeasedMessage Message() => new("m-1", "g", "receipt", 1, "application/json", "{}"u8.ToArray(), DateTimeOffset.UtcNow);

    private Task<HandlerOutcome> HandleAsync(LeasedMessage message, int maxResultBytes = 1024 * 1024, DateTimeOffset? startedAt = null)
    {
        var now = DateTimeOffset.UtcNow;
        var group = GroupSettings.FromValidDefinition("g", GroupDefinitions.Forwarding(_downstream, "/t"), now, now);
        return new HttpForwardHandler(_client, TimeProvider.System, "node-x", maxResultBytes).HandleAsync(new Delivery(message, group, startedAt ?? now), CancellationToken.None);
    }
}
