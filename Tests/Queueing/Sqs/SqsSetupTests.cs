using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.Endpoints;
using Amazon.SQS;
using Amazon.SQS.Model;
using ClusterQueue.Node.Queueing.Sqs;
using ClusterQueue.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace ClusterQueue.Tests.Queueing.Sqs;

/// <summary>
/// The AWS SDK's SQS client as the node configures it: where it posts, how it signs, how many attempts it makes and
/// how long each may take, and what its failures mean to the queue. Against a loopback server each test scripts, or
/// the emulator where SQS's own behaviour (a long poll) is the point.
/// </summary>
public sealed partial class SqsSetupTests(SqsEmulator emulator) : IClassFixture<SqsEmulator>, IAsyncLifetime
{
    /// <summary>A queue URL whose host cannot resolve, as emulators hand out: the client must never dial it.</summary>
    private const string QueueUrl = "http://sqs.eu-west-1.invalid:1/000000000000/q";

    private const string SentOk = """{"MessageId":"m-1","MD5OfMessageBody":"49f68a5c8493ec2c0bf489821c21fc3b"}""";

    private static readonly BasicAWSCredentials Credentials = new("test", "test");

    private ScriptedSqs _server = null!;

    public async Task InitializeAsync() => _server = await ScriptedSqs.StartAsync();

    public Task DisposeAsync() => _server.DisposeAsync().AsTask();

    [Fact]
    public async Task EveryCall_IsASignedJsonPostToTheServiceUrl_WithTheQueueUrlInTheBody()
    {
        _server.Reply = _ => (200, SentOk);
        using var client = Client(new SqsOptions { Region = "eu-west-1" });

        var sent = await client.SendMessageAsync(QueueUrl, "hi");

        Assert.Equal("m-1", sent.MessageId);
        var request = Assert.Single(_server.Requests);
        Assert.Equal("POST", request.Method);
        Assert.Equal("/", request.Path);
        Assert.Equal("AmazonSQS.SendMessage", request.Target);
        Assert.Equal("application/x-amz-json-1.0", request.ContentType);
        var authorization = AuthorizationPattern().Match(request.Authorization ?? "");
        Assert.True(authorization.Success, $"Authorization was: {request.Authorization}");

        // Signed for the configured region, though the service URL names none.
        Assert.Matches(@"^test/\d{8}/eu-west-1/sqs/aws4_request$", authorization.Groups["credential"].Value);
        using var body = JsonDocument.Parse(request.Body);
        Assert.Equal(QueueUrl, body.RootElement.GetProperty("QueueUrl").GetString());
        Assert.Equal("hi", body.RootElement.GetProperty("MessageBody").GetString());
    }

    [Fact]
    public void WithoutAServiceUrl_TheClientUsesTheRegionsAwsEndpoint()
    {
        using var client = SqsSetup.CreateClient(new SqsOptions { Region = "eu-west-1" }, Credentials);

        var endpoint = client.Config.DetermineServiceOperationEndpoint(new ServiceOperationEndpointParameters(new SendMessageRequest()));

        Assert.Equal(RegionEndpoint.EUWest1, client.Config.RegionEndpoint);
        Assert.Equal("https://sqs.eu-west-1.amazonaws.com", endpoint.URL.TrimEnd('/'));
    }

    [Fact]
    public async Task ServerErrors_AreRetried_UntilMaxAttemptsAreSpent_AndThenMeanUnavailable()
    {
        _server.Reply = _ => (500, """{"__type":"InternalError","message":"boom"}""");
        using var client = Client(new SqsOptions { MaxAttempts = 3 });

        var error = await Assert.ThrowsAnyAsync<AmazonSQSException>(() => client.SendMessageAsync(QueueUrl, "hi"));

        Assert.Equal(SqsErrorKind.Unavailable, SqsErrors.Classify(error));
        Assert.Equal(3, _server.Requests.Count);
    }

    [Fact]
    public async Task AnHtmlAnswerFromAProxy_IsClassifiedByItsStatus()
    {
        _server.Reply = _ => (503, "<html>Service Unavailable</html>");
        using var client = Client(new SqsOptions { MaxAttempts = 2 });

        var error = await Assert.ThrowsAnyAsync<AmazonSQSException>(() => client.SendMessageAsync(QueueUrl, "hi"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, error.StatusCode);
        Assert.Equal(SqsErrorKind.Unavailable, SqsErrors.Classify(error));
        Assert.Equal(2, _server.Requests.Count);
    }

    [Fact]
    public async Task Throttling_IsRetriedWithBackoff_UntilItSucceeds()
    {
        _server.Reply = n => n <= 2
            ? (400, """{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}""")
            : (200, SentOk);
        using var client = Client(new SqsOptions());

        var sent = await client.SendMessageAsync(QueueUrl, "hi");

        Assert.Equal("m-1", sent.MessageId);
        Assert.Equal(3, _server.Requests.Count);
    }

    [Fact]
    public async Task PersistentThrottling_MeansThrottled_AfterMaxAttempts()
    {
        _server.Reply = _ => (400, """{"__type":"com.amazonaws.sqs#ThrottlingException","message":"Rate exceeded"}""");
        using var client = Client(new SqsOptions { MaxAttempts = 2 });

        var error = await Assert.ThrowsAnyAsync<AmazonSQSException>(() => client.SendMessageAsync(QueueUrl, "hi"));

        Assert.Equal(SqsErrorKind.Throttled, SqsErrors.Classify(error));
        Assert.Equal(2, _server.Requests.Count);
    }

    [Fact]
    public async Task AnInvalidRequest_IsNotRetried()
    {
        _server.Reply = _ => (400, """{"__type":"com.amazonaws.sqs#InvalidParameterValue","message":"bad value"}""");
        using var client = Client(new SqsOptions());

        var error = await Assert.ThrowsAnyAsync<AmazonSQSException>(() => client.SendMessageAsync(QueueUrl, "hi"));

        Assert.Equal(SqsErrorKind.InvalidRequest, SqsErrors.Classify(error));
        Assert.Equal("bad value", error.Message);
        Assert.Single(_server.Requests);
    }

    [Theory]
    [InlineData("com.amazonaws.sqs#QueueDoesNotExist", SqsErrorKind.QueueDoesNotExist)]
    [InlineData("AWS.SimpleQueueService.NonExistentQueue", SqsErrorKind.QueueDoesNotExist)]
    [InlineData("com.amazonaws.sqs#RequestThrottled", SqsErrorKind.Throttled)]
    [InlineData("AWS.SimpleQueueService.RequestThrottled", SqsErrorKind.Throttled)]
    [InlineData("com.amazonaws.sqs#OverLimit", SqsErrorKind.OverLimit)]
    [InlineData("OverLimit", SqsErrorKind.OverLimit)]
    [InlineData("com.amazonaws.sqs#ReceiptHandleIsInvalid", SqsErrorKind.InvalidRequest)]
    [InlineData("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", SqsErrorKind.InvalidRequest)]
    [InlineData("com.amazon.coral.service#InvalidClientTokenId", SqsErrorKind.Other)]
    public async Task ErrorCodes_InEitherSpelling_MeanTheirKind(string code, SqsErrorKind kind)
    {
        _server.Reply = _ => (400, $$"""{"__type":"{{code}}","message":"described"}""");
        using var client = Client(new SqsOptions { MaxAttempts = 2 });

        var error = await Assert.ThrowsAnyAsync<AmazonSQSException>(() => client.GetQueueUrlAsync("q"));

        Assert.Equal(kind, SqsErrors.Classify(error));
    }

    [Fact]
    public async Task AnUnreachableEndpoint_MeansUnavailable()
    {
        using var client = SqsSetup.CreateClient(new SqsOptions { ServiceUrl = $"http://127.0.0.1:{LoopbackServer.FreePort()}/", MaxAttempts = 2 }, Credentials);

        var error = await Assert.ThrowsAnyAsync<Exception>(() => client.DeleteQueueAsync(QueueUrl));

        Assert.Equal(SqsErrorKind.Unavailable, SqsErrors.Classify(error));
        Assert.True(SqsErrors.IsOutage(error));
    }

    [Fact]
    public async Task AServerThatNeverAnswers_MeansUnavailable_AfterTheRequestTimeout()
    {
        // Accepts connections and never answers them.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var options = new SqsOptions
        {
            ServiceUrl = $"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}/",
            RequestTimeout = TimeSpan.FromSeconds(1),
            ReceiveWait = TimeSpan.Zero,
            MaxAttempts = 1,
        };
        using var client = SqsSetup.CreateClient(options, Credentials);
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAnyAsync<Exception>(() => client.SendMessageAsync(QueueUrl, "hi"));

        Assert.Equal(SqsErrorKind.Unavailable, SqsErrors.Classify(error));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"gave up after {clock.Elapsed}");
    }

    [Fact]
    public async Task ALongPoll_LongerThanTheRequestTimeout_WaitsItsWholeWait()
    {
        var options = new SqsOptions
        {
            ServiceUrl = emulator.Endpoint.ToString(),
            RequestTimeout = TimeSpan.FromSeconds(1),
            ReceiveWait = TimeSpan.FromSeconds(3),
            MaxAttempts = 1,
        };
        using var client = SqsSetup.CreateClient(options, Credentials);
        var url = (await client.CreateQueueAsync(SqsEmulator.UniqueQueueName("poll"))).QueueUrl;
        var clock = Stopwatch.StartNew();

        var received = await client.ReceiveMessageAsync(new ReceiveMessageRequest { QueueUrl = url, WaitTimeSeconds = 3 });

        Assert.Empty(received.Messages ?? []);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(2.5), $"returned after {clock.Elapsed}");
    }

    private AmazonSQSClient Client(SqsOptions options)
    {
        options.ServiceUrl = _server.BaseAddress.ToString();
        return SqsSetup.CreateClient(options, Credentials);
    }

    [GeneratedRegex(@"^AWS4-HMAC-SHA256 Credential=(?<credential>[^,]+), SignedHeaders=(?<signed>[^,]+), Signature=[0-9a-f]{64}$")]
    private static partial Regex AuthorizationPattern();

    private sealed record RecordedRequest(string Method, string Path, string? Target, string? ContentType, string? Authorization, string Body);

    /// <summary>A loopback HTTP server that answers the n-th request (from 1) as <see cref="Reply"/> says, recording each.</summary>
    private sealed class ScriptedSqs : IAsyncDisposable
    {
        private WebApplication _app = null!;
        private readonly ConcurrentQueue<RecordedRequest> _requests = new();
        private int _count;

        public Func<int, (int Status, string Body)> Reply { get; set; } = _ => (200, "{}");

        public Uri BaseAddress { get; private set; } = null!;

        public IReadOnlyList<RecordedRequest> Requests => [.. _requests];

        public static async Task<ScriptedSqs> StartAsync()
        {
            var server = new ScriptedSqs();
            (server._app, server.BaseAddress) = await LoopbackServer.StartAsync(server.HandleAsync);
            return server;
        }

        private async Task HandleAsync(HttpContext context)
        {
            using var reader = new StreamReader(context.Request.Body);
            var body = await reader.ReadToEndAsync();
            var headers = context.Request.Headers;
            _requests.Enqueue(new RecordedRequest(
                context.Request.Method,
                context.Request.Path.Value ?? "",
                headers["X-Amz-Target"].ToString(),
                context.Request.ContentType,
                headers.Authorization.ToString(),
                body));
            var (status, reply) = Reply(Interlocked.Increment(ref _count));
            context.Response.StatusCode = status;
            context.Response.ContentType = reply.StartsWith('<') ? "text/html" : "application/x-amz-json-1.0";
            await context.Response.WriteAsync(reply);
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
