using System.Net;
using Amazon;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using ClusterQueue.Node.Queueing.Sqs;

namespace ClusterQueue.Node.Queueing.Payloads;

/// <summary>
/// Payloads as S3 objects, one per message at <c>{keyPrefix}{groupId}/{messageId}</c>: a group's payloads share one
/// prefix, so a removed group's are found by listing it, and a lifecycle rule on the key prefix can expire strays.
/// Group ids (<c>[A-Za-z0-9._-]</c>) and message ids (GUIDs) need no escaping in a key. The bucket belongs to the
/// operator (region, encryption, lifecycle, access policy): this store reads and writes objects and never creates it.
/// </summary>
public sealed class S3PayloadStore : IPayloadStore, IDisposable
{
    /// <summary>The most keys S3 takes in one DeleteObjects call, and the most one ListObjectsV2 page returns.</summary>
    private const int DeleteBatch = 1000;

    private readonly IAmazonS3 _s3;
    private readonly bool _ownsClient;
    private readonly string _bucket;
    private readonly string _keyPrefix;

    /// <summary>Uses <paramref name="s3"/> as configured; the caller keeps it and disposes it.</summary>
    public S3PayloadStore(IAmazonS3 s3, string bucket, string keyPrefix)
        : this(s3, ownsClient: false, bucket, keyPrefix)
    {
    }

    private S3PayloadStore(IAmazonS3 s3, bool ownsClient, string bucket, string keyPrefix)
    {
        ArgumentNullException.ThrowIfNull(s3);
        ArgumentException.ThrowIfNullOrWhiteSpace(bucket);
        ArgumentNullException.ThrowIfNull(keyPrefix);
        _s3 = s3;
        _ownsClient = ownsClient;
        _bucket = bucket;
        _keyPrefix = keyPrefix;
    }

    /// <summary>
    /// A store on <paramref name="options"/>' bucket with credentials found the AWS way: environment variables, the
    /// shared profile, web identity (Kubernetes service accounts), then container or instance metadata.
    /// </summary>
    public static S3PayloadStore Create(SqsOptions options) =>
        new(new AmazonS3Client(ClientConfig(options)), ownsClient: true, options.PayloadBucket, options.PayloadKeyPrefix);

    /// <summary>A store on <paramref name="options"/>' bucket that signs with the given credentials.</summary>
    public static S3PayloadStore Create(SqsOptions options, AWSCredentials credentials)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        return new(new AmazonS3Client(credentials, ClientConfig(options)), ownsClient: true, options.PayloadBucket, options.PayloadKeyPrefix);
    }

    private static AmazonS3Config ClientConfig(SqsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.S3ServiceUrl))
        {
            return new AmazonS3Config { RegionEndpoint = RegionEndpoint.GetBySystemName(options.Region) };
        }

        return new AmazonS3Config
        {
            ServiceURL = options.S3ServiceUrl,

            // S3-compatible servers rarely resolve bucket.host names; the bucket goes in the path instead.
            ForcePathStyle = true,

            // A service URL replaces the region endpoint, so the signing region is named on its own.
            AuthenticationRegion = options.Region,
        };
    }

    public async Task PutAsync(string groupId, string messageId, byte[] body, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        using var content = new MemoryStream(body, writable: false);
        await _s3.PutObjectAsync(new PutObjectRequest
        {
            BucketName = _bucket,
            Key = Key(groupId, messageId),
            InputStream = content,
            AutoCloseStream = false,
            ContentType = "application/octet-stream",
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<byte[]?> GetAsync(string groupId, string messageId, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await _s3.GetObjectAsync(_bucket, Key(groupId, messageId), cancellationToken).ConfigureAwait(false);
            using var body = new MemoryStream(response.ContentLength is > 0 and <= int.MaxValue ? (int)response.ContentLength : 0);
            await response.ResponseStream.CopyToAsync(body, cancellationToken).ConfigureAwait(false);
            return body.ToArray();
        }
        catch (AmazonS3Exception e) when (IsMissingKey(e))
        {
            return null;
        }
    }

    public Task DeleteAsync(string groupId, string messageId, CancellationToken cancellationToken) =>
        _s3.DeleteObjectAsync(_bucket, Key(groupId, messageId), cancellationToken);

    public async Task DeleteGroupAsync(string groupId, CancellationToken cancellationToken)
    {
        // Trailing '/': group "orders" must not take group "orders-eu"'s payloads with it.
        var list = new ListObjectsV2Request { BucketName = _bucket, Prefix = $"{_keyPrefix}{groupId}/", MaxKeys = DeleteBatch };
        ListObjectsV2Response page;
        do
        {
            page = await _s3.ListObjectsV2Async(list, cancellationToken).ConfigureAwait(false);
            if (page.S3Objects is { Count: > 0 } objects)
            {
                await DeleteKeysAsync(objects.Select(o => new KeyVersion { Key = o.Key }).ToList(), cancellationToken).ConfigureAwait(false);
            }

            // The token names the last key listed, so deleting that page first does not disturb the next one.
            list.ContinuationToken = page.NextContinuationToken;
        }
        while (page.IsTruncated == true && !string.IsNullOrEmpty(page.NextContinuationToken));
    }

    private async Task DeleteKeysAsync(List<KeyVersion> keys, CancellationToken cancellationToken)
    {
        var response = await _s3.DeleteObjectsAsync(new DeleteObjectsRequest
        {
            BucketName = _bucket,
            Objects = keys,

            // Only failures are reported back, not a line for each of up to a thousand deleted keys.
            Quiet = true,
        }, cancellationToken).ConfigureAwait(false);

        // S3 answers 200 even when some keys could not be deleted; a payload left behind must not pass silently.
        if (response.DeleteErrors is { Count: > 0 })
        {
            throw new DeleteObjectsException(response);
        }
    }

    private string Key(string groupId, string messageId) => $"{_keyPrefix}{groupId}/{messageId}";

    // Only a missing key means "no such payload"; a missing bucket is a fault the operator must see. Some
    // S3-compatible servers answer 404 with no error body, hence the empty code.
    private static bool IsMissingKey(AmazonS3Exception e) =>
        e.ErrorCode == "NoSuchKey" || (e.StatusCode == HttpStatusCode.NotFound && string.IsNullOrEmpty(e.ErrorCode));

    public void Dispose()
    {
        if (_ownsClient)
        {
            _s3.Dispose();
        }
    }
}
