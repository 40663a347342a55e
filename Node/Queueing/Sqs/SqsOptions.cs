using System.ComponentModel.DataAnnotations;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>Where and how the node talks to Amazon SQS (or an SQS-compatible server). Bound from ClusterQueue:Sqs.</summary>
public sealed class SqsOptions : IValidatableObject
{
    public const string Section = "ClusterQueue:Sqs";

    /// <summary>
    /// Empty means AWS itself (<c>https://sqs.{Region}.amazonaws.com</c>); set it only for an SQS-compatible server
    /// such as a local emulator, so production never depends on a hand-typed URL.
    /// </summary>
    public string ServiceUrl { get; set; } = "";

    /// <summary>us-east-1 because it is AWS's own default region; it also scopes every request's signature.</summary>
    [Required(AllowEmptyStrings = false, ErrorMessage = "ClusterQueue:Sqs:Region is required (for example us-east-1).")]
    [RegularExpression("^[a-z]{2}(-[a-z]+)+-[0-9]+$", ErrorMessage = "ClusterQueue:Sqs:Region must be an AWS region name such as us-east-1.")]
    public string Region { get; set; } = "us-east-1";

    /// <summary>
    /// Short and recognisable, so ClusterQueue's queues stand out in a shared account and leave most of SQS's
    /// 80 characters to the group id.
    /// </summary>
    [RegularExpression("^[A-Za-z0-9_-]{0,40}$", ErrorMessage = "ClusterQueue:Sqs:QueuePrefix may hold up to 40 letters, digits, '-' and '_'.")]
    public string QueuePrefix { get; set; } = "cq-";

    /// <summary>
    /// SQS answers in milliseconds; 10 seconds rides out a slow network without stalling a group's actor for long.
    /// A long poll gets its wait time on top, so it is never mistaken for a hung call.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00", ErrorMessage = "ClusterQueue:Sqs:RequestTimeout must be between 1 second and 5 minutes.")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Four attempts (three retries) ride out a throttling burst or a node restart behind the endpoint; more would
    /// only hide an outage that callers must see and answer (ingress with 503, the actor with a backoff).
    /// </summary>
    [Range(1, 10, ErrorMessage = "ClusterQueue:Sqs:MaxAttempts must be between 1 and 10.")]
    public int MaxAttempts { get; set; } = 4;

    /// <summary>100 ms is long enough for SQS's throttling to ease and short enough to be invisible to a sender.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:00:10", ErrorMessage = "ClusterQueue:Sqs:RetryBaseDelay must be between 1 ms and 10 seconds.")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Caps a call's retries at a few seconds in all, well under an ingress request's patience.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00", ErrorMessage = "ClusterQueue:Sqs:RetryMaxDelay must be between 1 ms and 1 minute.")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The endpoint every request is posted to: the configured server, else the region's AWS endpoint.</summary>
    public Uri ResolveEndpoint() =>
        string.IsNullOrWhiteSpace(ServiceUrl) ? new Uri($"https://sqs.{Region}.amazonaws.com/") : new Uri(ServiceUrl);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrWhiteSpace(ServiceUrl)
            && (!Uri.TryCreate(ServiceUrl, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps)))
        {
            yield return new ValidationResult(
                "ClusterQueue:Sqs:ServiceUrl must be an absolute http(s) URL, or empty to use AWS itself.", [nameof(ServiceUrl)]);
        }

        if (RetryMaxDelay < RetryBaseDelay)
        {
            yield return new ValidationResult(
                "ClusterQueue:Sqs:RetryMaxDelay must not be shorter than ClusterQueue:Sqs:RetryBaseDelay.", [nameof(RetryMaxDelay)]);
        }
    }
}
