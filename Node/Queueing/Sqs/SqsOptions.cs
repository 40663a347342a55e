using System.ComponentModel.DataAnnotations;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>Where and how the node talks to Amazon SQS (or an SQS-compatible server). Bound from ClusterQueue:Sqs.</summary>
public sealed class SqsOptions : IValidatableObject
{
    public const string Section = "ClusterQueue:Sqs";

    /// <summary>
    /// Empty means AWS itself (the region's endpoint, as the AWS SDK resolves it); set it only for an SQS-compatible
    /// server such as a local emulator, so production never depends on a hand-typed URL. Every call is posted here,
    /// whatever host a queue URL names.
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
    /// How long one attempt of an SQS call may take. SQS answers in milliseconds; 10 seconds rides out a slow network
    /// without stalling a group's actor for long. Every attempt gets <see cref="ReceiveWait"/> on top, so the node's
    /// long poll is never mistaken for a hung call.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:05:00", ErrorMessage = "ClusterQueue:Sqs:RequestTimeout must be between 1 second and 5 minutes.")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Attempts per SQS call, the first included, with the AWS SDK's standard retry mode between them (exponential
    /// backoff with full jitter: up to 1 s, 2 s, 4 s; a per-endpoint retry quota that stops retrying while most calls
    /// fail). Four attempts (three retries) ride out a throttling burst or a node restart behind the endpoint; more
    /// would only hide an outage that callers must see and answer (ingress with 503, the actor with a backoff).
    /// </summary>
    [Range(1, 10, ErrorMessage = "ClusterQueue:Sqs:MaxAttempts must be between 1 and 10.")]
    public int MaxAttempts { get; set; } = 4;

    /// <summary>
    /// 256 KiB is the limit every SQS queue and SQS-compatible server accepts; a larger value (AWS allows up to 1 MiB)
    /// sends more bodies inline but only works where the queues' MaximumMessageSize was raised to match.
    /// 1024 is SQS's own lower bound for that attribute.
    /// </summary>
    [Range(1024, 1_048_576, ErrorMessage = "ClusterQueue:Sqs:MaxMessageBytes must be between 1024 and 1048576.")]
    public int MaxMessageBytes { get; set; } = 262_144;

    /// <summary>
    /// How long an actor's receive waits for a message on an empty queue. One second lets SQS look at all its servers
    /// (a zero-wait receive samples only some and can miss a message) while an idle group's actor still retires quickly.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:20", ErrorMessage = "ClusterQueue:Sqs:ReceiveWait must be between 0 and 20 seconds.")]
    public TimeSpan ReceiveWait { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The longest delay one send carries. SQS delays a message by 15 minutes at most, so a longer delay (a delayed
    /// message, a long Retry-After) travels in hops: the message is received early, sent again with the time left and
    /// the received copy deleted, without counting an attempt.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:15:00", ErrorMessage = "ClusterQueue:Sqs:MaxDelay must be between 1 second and 15 minutes.")]
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// store keeps offloaded bodies in this node's own database, which needs nothing more set up; s3 keeps them in
    /// <see cref="PayloadBucket"/> for deployments whose database should not grow with large bodies.
    /// </summary>
    [RegularExpression("^(store|s3)$", ErrorMessage = "ClusterQueue:Sqs:PayloadStore must be 'store' (this node's database) or 's3'.")]
    public string PayloadStore { get; set; } = "store";

    /// <summary>
    /// No default: the bucket belongs to the operator (its region, encryption, lifecycle and access policy), and the
    /// node never creates one. Required when <see cref="PayloadStore"/> is s3.
    /// </summary>
    [RegularExpression("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", ErrorMessage = "ClusterQueue:Sqs:PayloadBucket must be an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit.")]
    public string PayloadBucket { get; set; } = "";

    /// <summary>
    /// A folder of its own, so the payloads can share a bucket with other data and a lifecycle rule can target them.
    /// Only characters S3 keys carry without encoding; no leading or doubled '/'.
    /// </summary>
    [RegularExpression("^(?!/)(?!.*//)[A-Za-z0-9/._-]{0,200}$", ErrorMessage = "ClusterQueue:Sqs:PayloadKeyPrefix may hold up to 200 letters, digits, '.', '_', '-' and '/' (not leading, not doubled).")]
    public string PayloadKeyPrefix { get; set; } = "clusterqueue/";

    /// <summary>
    /// Empty means AWS itself (the region's S3 endpoint); set it only for an S3-compatible server such as a local
    /// emulator or MinIO, which is then addressed path-style (bucket in the path, not the host name).
    /// </summary>
    public string S3ServiceUrl { get; set; } = "";

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrWhiteSpace(ServiceUrl) && !IsHttpUrl(ServiceUrl))
        {
            yield return new ValidationResult(
                "ClusterQueue:Sqs:ServiceUrl must be an absolute http(s) URL, or empty to use AWS itself.", [nameof(ServiceUrl)]);
        }

        if (!string.IsNullOrWhiteSpace(S3ServiceUrl) && !IsHttpUrl(S3ServiceUrl))
        {
            yield return new ValidationResult(
                "ClusterQueue:Sqs:S3ServiceUrl must be an absolute http(s) URL, or empty to use AWS itself.", [nameof(S3ServiceUrl)]);
        }

        if (PayloadStore == "s3" && string.IsNullOrWhiteSpace(PayloadBucket))
        {
            yield return new ValidationResult(
                "ClusterQueue:Sqs:PayloadBucket is required when ClusterQueue:Sqs:PayloadStore is s3.", [nameof(PayloadBucket)]);
        }
    }

    private static bool IsHttpUrl(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var url) && (url.Scheme == Uri.UriSchemeHttp || url.Scheme == Uri.UriSchemeHttps);
}
