using System.Text.Json.Serialization;

namespace ClusterQueue.Node.Queueing.Sqs;

// The JSON shapes of SQS's JSON protocol (awsJson1_0), one request and one response per action, named as AWS names
// them. Internal: callers use the typed methods on SqsClient; these exist only to be serialized.

internal sealed record WireMessageAttribute(string DataType, string? StringValue, byte[]? BinaryValue);

internal sealed record CreateQueueRequest(string QueueName, Dictionary<string, string>? Attributes);

internal sealed record GetQueueUrlRequest(string QueueName);

internal sealed record QueueUrlResponse(string QueueUrl);

internal sealed record GetQueueAttributesRequest(string QueueUrl, List<string> AttributeNames);

internal sealed record GetQueueAttributesResponse(Dictionary<string, string>? Attributes);

internal sealed record SetQueueAttributesRequest(string QueueUrl, Dictionary<string, string> Attributes);

internal sealed record QueueUrlRequest(string QueueUrl);

internal sealed record SendMessageRequest(
    string QueueUrl,
    string MessageBody,
    int? DelaySeconds,
    Dictionary<string, WireMessageAttribute>? MessageAttributes);

internal sealed record SendMessageResponse(string MessageId, [property: JsonPropertyName("MD5OfMessageBody")] string? Md5OfMessageBody);

internal sealed record SendMessageBatchEntry(
    string Id,
    string MessageBody,
    int? DelaySeconds,
    Dictionary<string, WireMessageAttribute>? MessageAttributes);

internal sealed record SendMessageBatchRequest(string QueueUrl, List<SendMessageBatchEntry> Entries);

internal sealed record SendMessageBatchResultEntry(string Id, string MessageId);

internal sealed record BatchResultErrorEntry(string Id, string? Code, string? Message, bool SenderFault);

internal sealed record SendMessageBatchResponse(List<SendMessageBatchResultEntry>? Successful, List<BatchResultErrorEntry>? Failed);

internal sealed record ReceiveMessageRequest(
    string QueueUrl,
    int MaxNumberOfMessages,
    int? WaitTimeSeconds,
    int? VisibilityTimeout,
    List<string>? MessageSystemAttributeNames,
    List<string>? MessageAttributeNames);

internal sealed record WireMessage(
    string MessageId,
    string ReceiptHandle,
    string? Body,
    [property: JsonPropertyName("MD5OfBody")] string? Md5OfBody,
    Dictionary<string, string>? Attributes,
    Dictionary<string, WireMessageAttribute>? MessageAttributes);

internal sealed record ReceiveMessageResponse(List<WireMessage>? Messages);

internal sealed record DeleteMessageRequest(string QueueUrl, string ReceiptHandle);

internal sealed record DeleteMessageBatchEntry(string Id, string ReceiptHandle);

internal sealed record DeleteMessageBatchRequest(string QueueUrl, List<DeleteMessageBatchEntry> Entries);

internal sealed record ChangeMessageVisibilityRequest(string QueueUrl, string ReceiptHandle, int VisibilityTimeout);

internal sealed record ChangeMessageVisibilityBatchEntry(string Id, string ReceiptHandle, int VisibilityTimeout);

internal sealed record ChangeMessageVisibilityBatchRequest(string QueueUrl, List<ChangeMessageVisibilityBatchEntry> Entries);

internal sealed record IdOnlyEntry(string Id);

internal sealed record IdBatchResponse(List<IdOnlyEntry>? Successful, List<BatchResultErrorEntry>? Failed);

/// <summary>An error body. AWS spells the message both <c>message</c> and <c>Message</c>; matching is case-insensitive.</summary>
internal sealed record ErrorResponse([property: JsonPropertyName("__type")] string? Type, string? Message);

[JsonSourceGenerationOptions(
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    PropertyNameCaseInsensitive = true)]
[JsonSerializable(typeof(CreateQueueRequest))]
[JsonSerializable(typeof(GetQueueUrlRequest))]
[JsonSerializable(typeof(QueueUrlResponse))]
[JsonSerializable(typeof(GetQueueAttributesRequest))]
[JsonSerializable(typeof(GetQueueAttributesResponse))]
[JsonSerializable(typeof(SetQueueAttributesRequest))]
[JsonSerializable(typeof(QueueUrlRequest))]
[JsonSerializable(typeof(SendMessageRequest))]
[JsonSerializable(typeof(SendMessageResponse))]
[JsonSerializable(typeof(SendMessageBatchRequest))]
[JsonSerializable(typeof(SendMessageBatchResponse))]
[JsonSerializable(typeof(ReceiveMessageRequest))]
[JsonSerializable(typeof(ReceiveMessageResponse))]
[JsonSerializable(typeof(DeleteMessageRequest))]
[JsonSerializable(typeof(DeleteMessageBatchRequest))]
[JsonSerializable(typeof(ChangeMessageVisibilityRequest))]
[JsonSerializable(typeof(ChangeMessageVisibilityBatchRequest))]
[JsonSerializable(typeof(IdBatchResponse))]
[JsonSerializable(typeof(ErrorResponse))]
internal sealed partial class SqsJsonContext : JsonSerializerContext;
