using System.Globalization;
using System.Text;
using Amazon.SQS.Model;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>A message to send: its body, how long SQS keeps it hidden first, and its attributes.</summary>
public sealed record SqsOutgoingMessage(
    string Body,
    TimeSpan Delay = default,
    IReadOnlyDictionary<string, MessageAttributeValue>? Attributes = null)
{
    /// <summary>The message as one entry of a SendMessageBatch call.</summary>
    public SendMessageBatchRequestEntry ToBatchEntry(string id) => new()
    {
        Id = id,
        MessageBody = Body,
        DelaySeconds = Delay == TimeSpan.Zero ? null : DelaySeconds(Delay),
        MessageAttributes = Attributes is { Count: > 0 } ? new Dictionary<string, MessageAttributeValue>(Attributes) : null,
    };

    /// <summary>The size SQS counts against its limits: the body's UTF-8 bytes plus each attribute's name, data type and value.</summary>
    public int Size()
    {
        var size = Encoding.UTF8.GetByteCount(Body);
        foreach (var (name, attribute) in Attributes ?? new Dictionary<string, MessageAttributeValue>())
        {
            size += Encoding.UTF8.GetByteCount(name) + Encoding.UTF8.GetByteCount(attribute.DataType ?? "");

            // Binary values count as their raw bytes, as AWS counts them, not as the base64 text on the wire.
            size += attribute.StringValue is { } text ? Encoding.UTF8.GetByteCount(text) : (int)(attribute.BinaryValue?.Length ?? 0);
        }

        return size;
    }

    /// <summary>A string attribute, as SQS types it.</summary>
    public static MessageAttributeValue Text(string value) => new() { DataType = "String", StringValue = value };

    /// <summary>A number attribute: SQS carries it as text and checks it parses.</summary>
    public static MessageAttributeValue Number(long value) => new() { DataType = "Number", StringValue = value.ToString(CultureInfo.InvariantCulture) };

    /// <summary>SQS counts whole seconds; rounding up never shows a message sooner than asked.</summary>
    private static int DelaySeconds(TimeSpan delay)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        return (int)Math.Ceiling(delay.TotalSeconds);
    }
}
