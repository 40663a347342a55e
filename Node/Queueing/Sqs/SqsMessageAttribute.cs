namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>
/// A message attribute as SQS carries it: a data type (<c>String</c>, <c>Number</c>, <c>Binary</c>, optionally with a
/// custom suffix such as <c>String.json</c>) and a string or binary value.
/// </summary>
public sealed record SqsMessageAttribute(string DataType, string? StringValue = null, byte[]? BinaryValue = null)
{
    public static SqsMessageAttribute String(string value) => new("String", value);

    public static SqsMessageAttribute Number(string value) => new("Number", value);

    public static SqsMessageAttribute Binary(byte[] value) => new("Binary", BinaryValue: value);
}
