using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using ClusterQueue.Contracts;
using ClusterQueue.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace ClusterQueue.Tests.Processing;

/// <summary>
/// A target that answers with a redirect is not followed: the body was sent to the target and nowhere else, so the
/// attempt failed, and the redirect's status and Location are in the message's history. Two real servers on loopback:
/// the target, and the server its Location names.
/// </summary>
public sealed class RedirectTests
{
    private static readonly RetryBackoffDefinition QuickBackoff = new() { InitialSeconds = 0.05, MaxSeconds = 0.2 };

    private const string InternalBody = "internal: the metadata of a server nobody outside may read";

    [Theory]
    [InlineData(302)]
    [InlineData(307)]
    public async Task TargetAnsweringARedirect_IsAFailedAttempt_TheOtherServerGetsNothing_AndTheDeadLetterNamesTheLocation(int status)
    {
        await using var elsewhere = await Recorder.StartAsync(_ => (200, InternalBody));
        var location = elsewhere.Url("/landed");
        await using var target = await Recorder.StartAsync(_ => (status, null), location);
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("moved", new GroupDefinition
        {
            RatePerSecond = 1000,
            Burst = 1000,
            MaxConcurrency = 10,
            Target = new TargetDefinition { Url = target.Url("/hook") },
            MaxAttempts = 2,
            RetryBackoff = QuickBackoff,
        });

        var id = await node.IngestOkAsync("moved", """{"order":42}""");

        var dead = await Eventually.ReadAsync(
            () => node.Client.GetFromJsonAsync<MessageStatus>($"/v1/messages/{id}")!,
            s => s!.State is "dead" or "delivered",
            "the redirected message to settle");
        Assert.Equal("dead", dead!.State);
        Assert.Equal(2, dead.Attempts);
        Assert.Empty(elsewhere.Calls);
        Assert.Equal(2, target.Calls.Count);
        Assert.All(target.Calls, c => Assert.Equal(("POST", """{"order":42}"""), (c.Method, c.Body)));
        Assert.Contains($"HTTP {status}", dead.LastError, StringComparison.Ordinal);
        Assert.Contains(location, dead.LastError, StringComparison.Ordinal);
        var history = dead.AttemptHistory!;
        Assert.Equal([("failed", status), ("dead", status)], history.Select(a => (a.Outcome, a.Status ?? 0)));
        Assert.All(history, a => Assert.Contains(location, a.Error, StringComparison.Ordinal));
        var letter = Assert.Single((await node.Client.GetFromJsonAsync<DeadLetterList>("/v1/groups/moved/dead-letters"))!.DeadLetters);
        Assert.Equal(id, letter.MessageId);
    }

    [Fact]
    public async Task WaitingSender_OfARedirectedMessage_Gets502WithTheRedirectStatus_NeverTheOtherServersBody()
    {
        await using var elsewhere = await Recorder.StartAsync(_ => (200, InternalBody));
        await using var target = await Recorder.StartAsync(_ => (302, null), elsewhere.Url("/latest/meta-data"));
        await using var node = NodeHost.Start();
        await node.DefineGroupAsync("sync", new GroupDefinition
        {
            RatePerSecond = 1000,
            Burst = 1000,
            MaxConcurrency = 10,
            Target = new TargetDefinition { Url = target.Url("/hook") },
            MaxAttempts = 1,
        });

        using var response = await node.Client.PostAsync("/hooks/sync?wait=10", new StringContent("{}"));

        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("metadata", text, StringComparison.Ordinal);
        var problem = await Problems.ReadAsync(response, HttpStatusCode.BadGateway);
        Assert.Equal(302, problem.GetProperty("downstreamStatus").GetInt32());
        Assert.Contains(elsewhere.Url("/latest/meta-data"), problem.GetProperty("lastError").GetString(), StringComparison.Ordinal);
        Assert.Empty(elsewhere.Calls);
        Assert.Single(target.Calls);
    }

    private sealed record RecordedCall(string Method, string Path, string Body);

    /// <summary>A loopback server that records each request and answers with a status, a body and, if given, a Location.</summary>
    private sealed class Recorder : IAsyncDisposable
    {
        private readonly ConcurrentQueue<RecordedCall> _calls = new();
        private WebApplication _app = null!;
        private Uri _base = null!;

        public IReadOnlyList<RecordedCall> Calls => [.. _calls];

        public string Url(string path) => new Uri(_base, path).ToString();

        public static async Task<Recorder> StartAsync(Func<RecordedCall, (int Status, string? Body)> reply, string? location = null)
        {
            var recorder = new Recorder();
            (recorder._app, recorder._base) = await LoopbackServer.StartAsync(async context =>
            {
                using var reader = new StreamReader(context.Request.Body);
                var call = new RecordedCall(context.Request.Method, context.Request.Path.Value ?? "/", await reader.ReadToEndAsync());
                recorder._calls.Enqueue(call);
                var (status, body) = reply(call);
                context.Response.StatusCode = status;
                if (location is not null)
                {
                    context.Response.Headers.Location = location;
                }

                if (body is not null)
                {
                    await context.Response.WriteAsync(body);
                }
            });
            return recorder;
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}
