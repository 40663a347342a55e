using System.ComponentModel.DataAnnotations;
using ClusterQueue.Node.Queueing.Sqs;

namespace ClusterQueue.Tests.Queueing.Sqs;

public sealed class SqsOptionsTests
{
    [Fact]
    public void Defaults_AreValid()
    {
        Assert.Empty(Validate(new SqsOptions()));
    }

    [Theory]
    [InlineData("Region", "", "ClusterQueue:Sqs:Region")]
    [InlineData("Region", "Frankfurt", "ClusterQueue:Sqs:Region")]
    [InlineData("QueuePrefix", "has space", "ClusterQueue:Sqs:QueuePrefix")]
    [InlineData("ServiceUrl", "not a url", "ClusterQueue:Sqs:ServiceUrl")]
    [InlineData("ServiceUrl", "ftp://example.com", "ClusterQueue:Sqs:ServiceUrl")]
    [InlineData("MaxAttempts", "0", "ClusterQueue:Sqs:MaxAttempts")]
    [InlineData("MaxMessageBytes", "1023", "ClusterQueue:Sqs:MaxMessageBytes")]
    [InlineData("MaxMessageBytes", "1048577", "ClusterQueue:Sqs:MaxMessageBytes")]
    [InlineData("PayloadStore", "blob", "ClusterQueue:Sqs:PayloadStore")]
    [InlineData("PayloadStore", "S3", "ClusterQueue:Sqs:PayloadStore")]
    [InlineData("PayloadBucket", "Upper_Case", "ClusterQueue:Sqs:PayloadBucket")]
    [InlineData("PayloadBucket", "ab", "ClusterQueue:Sqs:PayloadBucket")]
    [InlineData("PayloadKeyPrefix", "has space/", "ClusterQueue:Sqs:PayloadKeyPrefix")]
    [InlineData("PayloadKeyPrefix", "/rooted/", "ClusterQueue:Sqs:PayloadKeyPrefix")]
    [InlineData("PayloadKeyPrefix", "a//b/", "ClusterQueue:Sqs:PayloadKeyPrefix")]
    [InlineData("PayloadKeyPrefix", "caf\u00e9/", "ClusterQueue:Sqs:PayloadKeyPrefix")]
    [InlineData("S3ServiceUrl", "not a url", "ClusterQueue:Sqs:S3ServiceUrl")]
    [InlineData("S3ServiceUrl", "ftp://example.com", "ClusterQueue:Sqs:S3ServiceUrl")]
    public void BadSetting_FailsWithAMessageNamingItsKey(string property, string value, string key)
    {
        var options = new SqsOptions();
        var target = typeof(SqsOptions).GetProperty(property)!;
        target.SetValue(options, target.PropertyType == typeof(int) ? int.Parse(value) : value);

        var message = Assert.Single(Validate(options)).ErrorMessage;

        Assert.StartsWith(key, message);
    }

    [Fact]
    public void PayloadDefaults_OffloadAbove256KiBIntoTheNodesOwnStoreUnderClusterqueuePrefix()
    {
        var options = new SqsOptions();

        Assert.Equal(262_144, options.MaxMessageBytes);
        Assert.Equal("store", options.PayloadStore);
        Assert.Equal("", options.PayloadBucket);
        Assert.Equal("clusterqueue/", options.PayloadKeyPrefix);
        Assert.Equal("", options.S3ServiceUrl);
    }

    [Theory]
    [InlineData(1024)]
    [InlineData(1_048_576)]
    public void MaxMessageBytes_AtEitherBound_IsValid(int bytes)
    {
        Assert.Empty(Validate(new SqsOptions { MaxMessageBytes = bytes }));
    }

    [Fact]
    public void S3PayloadStoreWithoutBucket_IsRefusedNamingPayloadBucket()
    {
        var message = Assert.Single(Validate(new SqsOptions { PayloadStore = "s3" })).ErrorMessage;

        Assert.StartsWith("ClusterQueue:Sqs:PayloadBucket", message);
    }

    [Theory]
    [InlineData("store", "", "", "")]
    [InlineData("s3", "my-bucket", "clusterqueue/", "")]
    [InlineData("s3", "payloads.example.com", "", "http://127.0.0.1:4566")]
    [InlineData("s3", "cq-payloads", "team-a/queue_1/", "https://minio.internal:9000/")]
    public void PayloadSettings_ThatFitTogether_AreValid(string store, string bucket, string prefix, string s3ServiceUrl)
    {
        var options = new SqsOptions { PayloadStore = store, PayloadBucket = bucket, PayloadKeyPrefix = prefix, S3ServiceUrl = s3ServiceUrl };

        Assert.Empty(Validate(options));
    }

    private static List<ValidationResult> Validate(SqsOptions options)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        return results;
    }
}
