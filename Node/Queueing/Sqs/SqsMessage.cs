using System.Globalization;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>A received message. The receipt handle, not the message id, is what deletes it or changes its visibility.</summary>
public sealed record SqsMessage(
    string MessageId,
    string ReceiptHandle,
    string Body,
    string? Md5OfBody,
    IReadOnlyDictionary<string, string> Attributes,
    IReadOnlyDictionary<string, SqsMessageAttribute> MessageAttributes)
{
    /// <summary>How many times SQS has handed this message out, this time included; null unless <c>ApproximateReceiveCount</c> was asked for.</summary>
    public int? ReceiveCount =>
        Attributes.TryGetValue("ApproximateReceiveCount", out var count)
        && int.TryParse(count, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : null;
}
