using Amazon.SQS;
using Amazon.SQS.Model;
using ClusterQueue.Node.Queueing.Sqs;

namespace ClusterQueue.Tests.Support;

/// <summary>The few SQS calls tests make by hand, on the AWS SDK's client, in one line each.</summary>
public static class SqsClientExtensions
{
    public static async Task<string> QueueUrlAsync(this IAmazonSQS client, string queueName) =>
        (await client.GetQueueUrlAsync(queueName)).QueueUrl;

    public static async Task<string> AttributeAsync(this IAmazonSQS client, string queueUrl, string name) =>
        (await client.GetQueueAttributesAsync(queueUrl, [name])).Attributes[name];

    /// <summary>Sends one message as the node would (attributes and all); returns SQS's message id.</summary>
    public static async Task<string> SendAsync(this IAmazonSQS client, string queueUrl, SqsOutgoingMessage message)
    {
        var entry = message.ToBatchEntry("0");
        var sent = await client.SendMessageAsync(new SendMessageRequest
        {
            QueueUrl = queueUrl,
            MessageBody = entry.MessageBody,
            DelaySeconds = entry.DelaySeconds,
            MessageAttributes = entry.MessageAttributes,
        });
        return sent.MessageId;
    }
}
