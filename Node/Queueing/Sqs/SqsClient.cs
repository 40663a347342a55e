using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Amazon;
using Amazon.Runtime;
using Amazon.Runtime.Credentials;
using Amazon.Runtime.Signing;
using Microsoft.Extensions.Logging.Abstractions;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>
/// A small, typed client for Amazon SQS's JSON protocol, written by hand because the AWSSDK.SQS package is not on
/// this project's registry. Every call is <c>POST /</c> to the configured endpoint with
/// <c>X-Amz-Target: AmazonSQS.&lt;Action&gt;</c>, signed with SigV4 by AWSSDK.Core's <see cref="SigV4SigningHandler"/>.
/// The queue URL always travels in the body and is never dialled: emulators hand out URLs whose hosts don't resolve,
/// and AWS itself routes by the body.
/// <para>
/// Throttling, 5xx answers, timeouts and connection failures are retried here with exponential backoff and jitter,
/// a bounded number of times; other client errors fail at once. What is left is thrown as one
/// <see cref="SqsException"/> whose <see cref="SqsErrorKind"/> tells the caller what it means.
/// </para>
/// </summary>
public sealed class SqsClient : IDisposable
{
    /// <summary>SQS's longest long poll: a receive that names no wait may still wait this long (the queue's setting).</summary>
    private static readonly TimeSpan MaxLongPoll = TimeSpan.FromSeconds(20);

    private static readonly MediaTypeHeaderValue JsonProtocol = new("application/x-amz-json-1.0");

    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly Uri _endpoint;
    private readonly SqsOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    /// <summary>
    /// Uses <paramref name="httpClient"/> as given: its handler chain must sign requests (see <see cref="Create(SqsOptions, AWSCredentials, TimeProvider?, ILogger{SqsClient}?)"/>).
    /// Its own timeout must outlast a long poll, because this client sets each attempt's deadline itself.
    /// </summary>
    public SqsClient(HttpClient httpClient, Uri endpoint, SqsOptions? options = null, TimeProvider? timeProvider = null, ILogger<SqsClient>? logger = null)
        : this(httpClient, ownsHttp: false, endpoint, options ?? new SqsOptions(), timeProvider, logger)
    {
    }

    private SqsClient(HttpClient httpClient, bool ownsHttp, Uri endpoint, SqsOptions options, TimeProvider? timeProvider, ILogger<SqsClient>? logger)
    {
        ArgumentNullException.ThrowIfNull(httpClient);
        ArgumentNullException.ThrowIfNull(endpoint);
        var longest = options.RequestTimeout + MaxLongPoll;
        if (httpClient.Timeout != Timeout.InfiniteTimeSpan && httpClient.Timeout <= longest)
        {
            // Otherwise HttpClient would cut a legitimate 20-second long poll short and it would look like an outage.
            throw new ArgumentException(
                $"The HttpClient's Timeout ({httpClient.Timeout}) must exceed the longest SQS call ({longest}: the request timeout plus a 20 s long poll); use Timeout.InfiniteTimeSpan.",
                nameof(httpClient));
        }

        _http = httpClient;
        _ownsHttp = ownsHttp;
        _endpoint = endpoint;
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = logger ?? NullLogger<SqsClient>.Instance;
    }

    public Uri Endpoint => _endpoint;

    /// <summary>
    /// A client for <paramref name="options"/>' endpoint with credentials found the AWS way: environment variables,
    /// the shared profile, web identity (Kubernetes service accounts), then container or instance metadata.
    /// </summary>
    public static SqsClient Create(SqsOptions options, TimeProvider? timeProvider = null, ILogger<SqsClient>? logger = null) =>
        Create(options, DefaultAWSCredentialsIdentityResolver.GetCredentials(null), timeProvider, logger);

    /// <summary>A client for <paramref name="options"/>' endpoint that signs with the given credentials.</summary>
    public static SqsClient Create(SqsOptions options, AWSCredentials credentials, TimeProvider? timeProvider = null, ILogger<SqsClient>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(credentials);
        var transport = new SocketsHttpHandler
        {
            // Re-resolve the endpoint now and then: AWS rotates the addresses behind it.
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        var signing = new SigV4SigningHandler(credentials, RegionEndpoint.GetBySystemName(options.Region), "sqs", transport);

        // Each attempt gets its own deadline inside the client (request timeout plus the long poll's wait).
        var http = new HttpClient(signing) { Timeout = Timeout.InfiniteTimeSpan };
        return new SqsClient(http, ownsHttp: true, options.ResolveEndpoint(), options, timeProvider, logger);
    }

    public async Task<string> CreateQueueAsync(string queueName, IReadOnlyDictionary<string, string>? attributes = null, CancellationToken cancellationToken = default)
    {
        var request = new CreateQueueRequest(queueName, attributes is null ? null : new Dictionary<string, string>(attributes));
        var response = await CallAsync("CreateQueue", request, SqsJsonContext.Default.CreateQueueRequest, SqsJsonContext.Default.QueueUrlResponse, TimeSpan.Zero, cancellationToken);
        return response.QueueUrl;
    }

    public async Task<string> GetQueueUrlAsync(string queueName, CancellationToken cancellationToken = default)
    {
        var response = await CallAsync("GetQueueUrl", new GetQueueUrlRequest(queueName), SqsJsonContext.Default.GetQueueUrlRequest, SqsJsonContext.Default.QueueUrlResponse, TimeSpan.Zero, cancellationToken);
        return response.QueueUrl;
    }

    /// <summary>The named attributes (e.g. <c>VisibilityTimeout</c>, <c>ApproximateNumberOfMessages</c>); none named means all.</summary>
    public async Task<IReadOnlyDictionary<string, string>> GetQueueAttributesAsync(string queueUrl, IReadOnlyList<string>? attributeNames = null, CancellationToken cancellationToken = default)
    {
        var names = attributeNames is { Count: > 0 } ? attributeNames.ToList() : ["All"];
        var response = await CallAsync("GetQueueAttributes", new GetQueueAttributesRequest(queueUrl, names), SqsJsonContext.Default.GetQueueAttributesRequest, SqsJsonContext.Default.GetQueueAttributesResponse, TimeSpan.Zero, cancellationToken);
        return response.Attributes ?? [];
    }

    public Task SetQueueAttributesAsync(string queueUrl, IReadOnlyDictionary<string, string> attributes, CancellationToken cancellationToken = default) =>
        CallAsync("SetQueueAttributes", new SetQueueAttributesRequest(queueUrl, new Dictionary<string, string>(attributes)), SqsJsonContext.Default.SetQueueAttributesRequest, cancellationToken);

    public Task DeleteQueueAsync(string queueUrl, CancellationToken cancellationToken = default) =>
        CallAsync("DeleteQueue", new QueueUrlRequest(queueUrl), SqsJsonContext.Default.QueueUrlRequest, cancellationToken);

    /// <summary>Deletes every message in the queue, in flight or not. SQS allows one purge per queue every 60 seconds.</summary>
    public Task PurgeQueueAsync(string queueUrl, CancellationToken cancellationToken = default) =>
        CallAsync("PurgeQueue", new QueueUrlRequest(queueUrl), SqsJsonContext.Default.QueueUrlRequest, cancellationToken);

    public async Task<SqsSentMessage> SendMessageAsync(string queueUrl, SqsOutgoingMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        var request = new SendMessageRequest(queueUrl, message.Body, DelaySeconds(message.Delay), ToWire(message.Attributes));
        var response = await CallAsync("SendMessage", request, SqsJsonContext.Default.SendMessageRequest, SqsJsonContext.Default.SendMessageResponse, TimeSpan.Zero, cancellationToken);
        return new SqsSentMessage(response.MessageId, response.Md5OfMessageBody);
    }

    /// <summary>Sends up to 10 messages in one call; entries SQS refuses come back in <see cref="SqsBatchResult{T}.Failed"/>.</summary>
    public async Task<SqsBatchResult<SqsSentEntry>> SendMessageBatchAsync(string queueUrl, IReadOnlyList<SqsSendEntry> entries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var wire = entries.Select(e => new SendMessageBatchEntry(e.Id, e.Message.Body, DelaySeconds(e.Message.Delay), ToWire(e.Message.Attributes))).ToList();
        var response = await CallAsync("SendMessageBatch", new SendMessageBatchRequest(queueUrl, wire), SqsJsonContext.Default.SendMessageBatchRequest, SqsJsonContext.Default.SendMessageBatchResponse, TimeSpan.Zero, cancellationToken);
        return new SqsBatchResult<SqsSentEntry>(
            [.. (response.Successful ?? []).Select(s => new SqsSentEntry(s.Id, s.MessageId))],
            Failures(response.Failed));
    }

    /// <summary>Receives up to <see cref="SqsReceiveRequest.MaxNumberOfMessages"/> messages; an empty list when the wait ran out with none.</summary>
    public async Task<IReadOnlyList<SqsMessage>> ReceiveMessagesAsync(string queueUrl, SqsReceiveRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfLessThan(request.MaxNumberOfMessages, 1, nameof(request));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(request.MaxNumberOfMessages, 10, nameof(request));
        if (request.WaitTime is { } wait && (wait < TimeSpan.Zero || wait > MaxLongPoll))
        {
            throw new ArgumentOutOfRangeException(nameof(request), wait, "SQS long polls wait between 0 and 20 seconds.");
        }

        var wire = new ReceiveMessageRequest(
            queueUrl,
            request.MaxNumberOfMessages,
            request.WaitTime is { } w ? Seconds(w) : null,
            request.VisibilityTimeout is { } v ? Seconds(v) : null,
            request.AttributeNames.Count > 0 ? [.. request.AttributeNames] : null,
            request.MessageAttributeNames.Count > 0 ? [.. request.MessageAttributeNames] : null);

        // The wait is part of the answer's time, not a sign of trouble: the attempt's deadline grows by it.
        var waits = request.WaitTime ?? MaxLongPoll;
        var response = await CallAsync("ReceiveMessage", wire, SqsJsonContext.Default.ReceiveMessageRequest, SqsJsonContext.Default.ReceiveMessageResponse, waits, cancellationToken);
        return [.. (response.Messages ?? []).Select(FromWire)];
    }

    public Task DeleteMessageAsync(string queueUrl, string receiptHandle, CancellationToken cancellationToken = default) =>
        CallAsync("DeleteMessage", new DeleteMessageRequest(queueUrl, receiptHandle), SqsJsonContext.Default.DeleteMessageRequest, cancellationToken);

    public async Task<SqsBatchResult<string>> DeleteMessageBatchAsync(string queueUrl, IReadOnlyList<SqsReceiptEntry> entries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var request = new DeleteMessageBatchRequest(queueUrl, [.. entries.Select(e => new DeleteMessageBatchEntry(e.Id, e.ReceiptHandle))]);
        var response = await CallAsync("DeleteMessageBatch", request, SqsJsonContext.Default.DeleteMessageBatchRequest, SqsJsonContext.Default.IdBatchResponse, TimeSpan.Zero, cancellationToken);
        return IdResult(response);
    }

    /// <summary>Hides a received message for <paramref name="visibilityTimeout"/> from now; zero makes it visible at once.</summary>
    public Task ChangeMessageVisibilityAsync(string queueUrl, string receiptHandle, TimeSpan visibilityTimeout, CancellationToken cancellationToken = default) =>
        CallAsync("ChangeMessageVisibility", new ChangeMessageVisibilityRequest(queueUrl, receiptHandle, Seconds(visibilityTimeout)), SqsJsonContext.Default.ChangeMessageVisibilityRequest, cancellationToken);

    public async Task<SqsBatchResult<string>> ChangeMessageVisibilityBatchAsync(string queueUrl, IReadOnlyList<SqsVisibilityEntry> entries, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var request = new ChangeMessageVisibilityBatchRequest(queueUrl, [.. entries.Select(e => new ChangeMessageVisibilityBatchEntry(e.Id, e.ReceiptHandle, Seconds(e.VisibilityTimeout)))]);
        var response = await CallAsync("ChangeMessageVisibilityBatch", request, SqsJsonContext.Default.ChangeMessageVisibilityBatchRequest, SqsJsonContext.Default.IdBatchResponse, TimeSpan.Zero, cancellationToken);
        return IdResult(response);
    }

    public void Dispose()
    {
        if (_ownsHttp)
        {
            _http.Dispose();
        }
    }

    private Task CallAsync<TRequest>(string action, TRequest request, JsonTypeInfo<TRequest> requestType, CancellationToken cancellationToken) =>
        CallAsync<TRequest, object?>(action, request, requestType, responseType: null, TimeSpan.Zero, cancellationToken);

    private async Task<TResponse> CallAsync<TRequest, TResponse>(
        string action,
        TRequest request,
        JsonTypeInfo<TRequest> requestType,
        JsonTypeInfo<TResponse>? responseType,
        TimeSpan extraWait,
        CancellationToken cancellationToken)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(request, requestType);
        for (var attempt = 1; ; attempt++)
        {
            SqsException failure;
            try
            {
                return await AttemptAsync(action, body, responseType, extraWait, cancellationToken);
            }
            catch (SqsException e)
            {
                failure = e;
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                failure = new SqsException(SqsErrorKind.Unavailable, "RequestTimeout", $"No answer within {_options.RequestTimeout + extraWait}.", null, e);
            }
            catch (HttpRequestException e)
            {
                failure = new SqsException(SqsErrorKind.Unavailable, "ConnectionFailure", e.Message, e.StatusCode, e);
            }

            if (!SqsErrors.IsTransient(failure.Kind) || attempt >= _options.MaxAttempts)
            {
                throw failure;
            }

            var delay = RetryBackoff.Delay(attempt, _options.RetryBaseDelay, _options.RetryMaxDelay, Random.Shared);
            Log.Retrying(_logger, action, failure.ErrorCode, attempt, _options.MaxAttempts, delay);
            await Task.Delay(delay, _time, cancellationToken);
        }
    }

    private async Task<TResponse> AttemptAsync<TResponse>(string action, byte[] body, JsonTypeInfo<TResponse>? responseType, TimeSpan extraWait, CancellationToken cancellationToken)
    {
        // A network deadline on the wall clock, deliberately not the injected TimeProvider: a test's fake clock
        // drives the backoff, while a real socket still needs real time to answer.
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.RequestTimeout + extraWait);

        using var message = new HttpRequestMessage(HttpMethod.Post, _endpoint) { Content = new ByteArrayContent(body) };
        message.Content.Headers.ContentType = JsonProtocol;
        message.Headers.TryAddWithoutValidation("X-Amz-Target", "AmazonSQS." + action);

        using var response = await _http.SendAsync(message, HttpCompletionOption.ResponseContentRead, deadline.Token);
        var payload = await response.Content.ReadAsByteArrayAsync(deadline.Token);
        if (!response.IsSuccessStatusCode)
        {
            throw ToException(response, payload);
        }

        if (responseType is null)
        {
            return default!;
        }

        try
        {
            return JsonSerializer.Deserialize(payload, responseType)
                ?? throw new JsonException("The answer was JSON null.");
        }
        catch (JsonException e)
        {
            throw new SqsException(SqsErrorKind.Other, "MalformedResponse", $"SQS {action} answered {(int)response.StatusCode} with a body that is not its documented JSON: {e.Message}", response.StatusCode, e);
        }
    }

    private static SqsException ToException(HttpResponseMessage response, byte[] payload)
    {
        string? code = null;
        string? text = null;
        try
        {
            if (payload.Length > 0 && JsonSerializer.Deserialize(payload, SqsJsonContext.Default.ErrorResponse) is { } error)
            {
                code = error.Type;
                text = error.Message;
            }
        }
        catch (JsonException)
        {
            // A proxy or load balancer in front of SQS answers in HTML; the status alone still classifies it.
        }

        if (string.IsNullOrEmpty(code) && response.Headers.TryGetValues("x-amzn-query-error", out var queryErrors))
        {
            code = queryErrors.First().Split(';')[0];
        }

        code = string.IsNullOrEmpty(code) ? $"Http{(int)response.StatusCode}" : code;
        text ??= response.ReasonPhrase ?? "";
        return new SqsException(SqsErrors.Classify(code, response.StatusCode), code, text, response.StatusCode);
    }

    private static SqsBatchResult<string> IdResult(IdBatchResponse response) =>
        new([.. (response.Successful ?? []).Select(s => s.Id)], Failures(response.Failed));

    private static List<SqsBatchFailure> Failures(List<BatchResultErrorEntry>? failed) =>
        [.. (failed ?? []).Select(f => new SqsBatchFailure(f.Id, f.Code ?? "", f.Message, f.SenderFault))];

    private static Dictionary<string, WireMessageAttribute>? ToWire(IReadOnlyDictionary<string, SqsMessageAttribute>? attributes) =>
        attributes is null || attributes.Count == 0
            ? null
            : attributes.ToDictionary(a => a.Key, a => new WireMessageAttribute(a.Value.DataType, a.Value.StringValue, a.Value.BinaryValue));

    private static SqsMessage FromWire(WireMessage m) => new(
        m.MessageId,
        m.ReceiptHandle,
        m.Body ?? "",
        m.Md5OfBody,
        m.Attributes ?? [],
        (m.MessageAttributes ?? []).ToDictionary(a => a.Key, a => new SqsMessageAttribute(a.Value.DataType, a.Value.StringValue, a.Value.BinaryValue)));

    private static int? DelaySeconds(TimeSpan delay) => delay == TimeSpan.Zero ? null : Seconds(delay);

    /// <summary>SQS counts whole seconds; rounding up never shows a message sooner than asked.</summary>
    private static int Seconds(TimeSpan value)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(value, TimeSpan.Zero);
        return (int)Math.Ceiling(value.TotalSeconds);
    }
}
