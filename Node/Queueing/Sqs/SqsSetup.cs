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
        services.AddSingleton(provider => SqsClient.Create(
            provider.GetRequiredService<IOptions<SqsOptions>>().Value,
            provider.GetRequiredService<TimeProvider>(),
            provider.GetRequiredService<ILogger<SqsClient>>()));
        services.AddSingleton(provider => new SqsSendBatcher(
            provider.GetRequiredService<SqsClient>(),
            provider.GetRequiredService<IOptions<SqsOptions>>().Value.MaxMessageBytes));
        services.AddSingleton<IPayloadStore>(provider =>
        {
            var options = provider.GetRequiredService<IOptions<SqsOptions>>().Value;
            return string.Equals(options.PayloadStore, "s3", StringComparison.Ordinal)
                ? S3PayloadStore.Create(options)
                : new SqlPayloadStore(provider.GetRequiredService<SqlDatabase>());
        });
        services.AddSingleton<IMessageQueue>(provider => new SqsMessageQueue(
            provider.GetRequiredService<SqsClient>(),
            provider.GetRequiredService<SqsSendBatcher>(),
            provider.GetRequiredService<MessageRecords>(),
            provider.GetRequiredService<IPayloadStore>(),
            provider.GetRequiredService<IOptions<SqsOptions>>().Value,
            provider.GetRequiredService<TimeProvider>(),
            provider.GetRequiredService<ILogger<SqsMessageQueue>>()));
        return services;
    }
}
