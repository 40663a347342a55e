using Amazon.Runtime;

namespace ClusterQueue.Tests.Support;

/// <summary>
/// Puts a test's handler between the AWS SDK's SQS client and the wire, to watch or hold its calls. The SDK keeps the
/// HTTP client with its SQS client (no cache key), so two tests never share one and it goes when the client does.
/// </summary>
public sealed class SqsHttp(Func<HttpMessageHandler, DelegatingHandler> wrap) : HttpClientFactory
{
    public override HttpClient CreateHttpClient(IClientConfig clientConfig) =>
        new(wrap(new SocketsHttpHandler())) { Timeout = clientConfig.Timeout ?? Timeout.InfiniteTimeSpan };

    public override string? GetConfigUniqueString(IClientConfig clientConfig) => null;
}
