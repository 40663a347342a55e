using System.Text;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using ClusterQueue.Node.Queueing.Payloads;
using ClusterQueue.Node.Queueing.Sqs;
using ClusterQueue.Tests.Support;

namespace ClusterQueue.Tests.Queueing.Payloads;

/// <summary>
/// The payload store contract against a real S3-compatible server (fauxqs serves S3 beside SQS). Each test gets a
/// bucket of its own, made here as an operator would: the store itself never creates buckets.
/// </summary>
public sealed class S3PayloadStoreTests(SqsEmulator emulator) : PayloadStoreContractTests, IClassFixture<SqsEmulator>, IAsyncLifetime
{
    private static readonly AWSCredentials Credentials = new BasicAWSCredentials("test", "test");

    private readonly string _bucket = $"cqt-payloads-{Guid.NewGuid():N}";
    private readonly List<S3PayloadStore> _stores = [];
    private AmazonS3Client _operator = null!;

    public async Task InitializeAsync()
    {
        _operator = new AmazonS3Client(Credentials, new AmazonS3Config
        {
            ServiceURL = emulator.Endpoint.ToString(),
            ForcePathStyle = true,
            AuthenticationRegion = "us-east-1",
        });
        await _operator.PutBucketAsync(_bucket);
    }

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            store.Dispose();
        }

        // Leave the shared emulator as it was: empty the bucket, then remove it.
        var list = new ListObjectsV2Request { BucketName = _bucket };
        ListObjectsV2Response page;
        do
        {
            page = await _operator.ListObjectsV2Async(list);
            foreach (var item in page.S3Objects ?? [])
            {
                await _operator.DeleteObjectAsync(_bucket, item.Key);
            }

            list.ContinuationToken = page.NextContinuationToken;
        }
        while (page.IsTruncated == true);

        await _operator.DeleteBucketAsync(_bucket);
        _operator.Dispose();
    }

    protected override Task<IPayloadStore> CreateStoreAsync() => Task.FromResult<IPayloadStore>(Create(_bucket));

    [Fact]
    public async Task Put_WritesOneObjectAtPrefixGroupSlashMessageId()
    {
        var store = await CreateStoreAsync();
        var id = Guid.NewGuid().ToString();

        await store.PutAsync("orders.v2_eu-1", id, Encoding.UTF8.GetBytes("hello"), CancellationToken.None);

        var listed = await _operator.ListObjectsV2Async(new ListObjectsV2Request { BucketName = _bucket });
        var item = Assert.Single(listed.S3Objects ?? []);
        Assert.Equal($"clusterqueue/orders.v2_eu-1/{id}", item.Key);
        using var response = await _operator.GetObjectAsync(_bucket, item.Key);
        using var reader = new StreamReader(response.ResponseStream);
        Assert.Equal("hello", await reader.ReadToEndAsync());
    }

    [Fact]
    public async Task Get_WhenTheBucketIsMissing_ThrowsInsteadOfReportingNoPayload()
    {
        var store = Create($"cqt-missing-{Guid.NewGuid():N}");

        var error = await Assert.ThrowsAsync<AmazonS3Exception>(() => store.GetAsync("orders", Guid.NewGuid().ToString(), CancellationToken.None));

        Assert.Equal("NoSuchBucket", error.ErrorCode);
    }

    private S3PayloadStore Create(string bucket)
    {
        var options = new SqsOptions
        {
            S3ServiceUrl = emulator.Endpoint.ToString(),
            PayloadStore = "s3",
            PayloadBucket = bucket,
        };
        var store = S3PayloadStore.Create(options, Credentials);
        _stores.Add(store);
        return store;
    }
}
