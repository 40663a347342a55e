using Amazon;
using Amazon.Runtime;
using Amazon.SQS;
using ClusterQueue.Node.Queueing.Payloads;
using ClusterQueue.Node.Storage;
using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Queueing.Sqs;

public static class SqsSetup
{
    /// <summary>The SQS queue mode (ClusterQueue:Queue = sqs): one SQS queue per group, large bodies in the payload store.</summary>
    public static IServiceCollection AddSqsQueue(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SqsOptions>().Bind(configuration.GetSection(SqsOptions.Section)).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IAmazonSQS>(provider => CreateClient(provider.GetRequiredService<IOptions<SqsOptions>>().Value));
        services.AddSingleton(provider => new SqsSendBatcher(
            provider.GetRequiredService<IAmazonSQS>(),
            provider.GetRequiredService<IOptions<SqsOptions>>().Value.MaxMessageBytes));
        services.AddSingleton<IPayloadStore>(provider =>
        {
            var options = provider.GetRequiredService<IOptions<SqsOptions>>().Value;
            return string.Equals(options.PayloadStore, "s3", StringComparison.Ordinal)
                ? S3PayloadStore.Create(options)
                : new SqlPayloadStore(provider.GetRequiredService<SqlDatabase>());
        });
        services.AddSingleton<IMessageQueue>(provider => new SqsMessageQueue(
            provider.GetRequiredService<IAmazonSQS>(),
            provider.GetRequiredService<SqsSendBatcher>(),
            provider.GetRequiredService<MessageRecords>(),
            provider.GetRequiredService<IPayloadStore>(),
            provider.GetRequiredService<IOptions<SqsOptions>>().Value,
            provider.GetRequiredService<TimeProvider>(),
            provider.GetRequiredService<ILogger<SqsMessageQueue>>()));
        return services;
    }

    /// <summary>
    /// The AWS SDK's SQS client for <paramref name="options"/>. Without <paramref name="credentials"/> it finds them the
    /// AWS way at its first call: environment variables, the shared profile, web identity (IRSA on EKS), then
    /// container or instance metadata. <paramref name="http"/> replaces the SDK's HTTP client (tests watch the wire).
    /// </summary>
    public static AmazonSQSClient CreateClient(SqsOptions options, AWSCredentials? credentials = null, HttpClientFactory? http = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = new AmazonSQSConfig
        {
            // Per attempt. The node's receives long-poll for ReceiveWait, and a deadline shorter than that would cut a
            // legitimate wait short and make it look like an outage.
            Timeout = options.RequestTimeout + options.ReceiveWait,

            // The SDK counts retries, the option counts attempts.
            MaxErrorRetry = options.MaxAttempts - 1,
        };

        if (string.IsNullOrWhiteSpace(options.ServiceUrl))
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(options.Region);
        }
        else
        {
            // The SDK posts every call to this URL and carries the queue URL in the body, so the host a compatible
            // server names in its queue URLs (often one that does not resolve) is never dialled.
            config.ServiceURL = options.ServiceUrl;

            // A service URL replaces the region endpoint, so the signing region is named on its own.
            config.AuthenticationRegion = options.Region;
        }

        if (http is not null)
        {
            config.HttpClientFactory = http;
        }

        return credentials is null ? new AmazonSQSClient(config) : new AmazonSQSClient(credentials, config);
    }
}
