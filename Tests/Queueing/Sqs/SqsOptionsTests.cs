using System.ComponentModel.DataAnnotations;
using ClusterQueue.Node.Queueing.Sqs;

namespace ClusterQueue.Tests.Queueing.Sqs;

public sealed class SqsOptionsTests
{
    [Fact]
    public void EmptyServiceUrl_ResolvesToTheRegionsAwsEndpoint()
    {
        Assert.Equal(new Uri("https://sqs.eu-west-1.amazonaws.com/"), new SqsOptions { Region = "eu-west-1" }.ResolveEndpoint());
        Assert.Equal(new Uri("http://127.0.0.1:9324/"), new SqsOptions { ServiceUrl = "http://127.0.0.1:9324" }.ResolveEndpoint());
    }

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
    public void BadSetting_FailsWithAMessageNamingItsKey(string property, string value, string key)
    {
        var options = new SqsOptions();
        var target = typeof(SqsOptions).GetProperty(property)!;
        target.SetValue(options, target.PropertyType == typeof(int) ? int.Parse(value) : value);

        var message = Assert.Single(Validate(options)).ErrorMessage;

        Assert.StartsWith(key, message);
    }

    [Fact]
    public void RetryMaxDelayBelowBaseDelay_IsRefused()
    {
        var options = new SqsOptions { RetryBaseDelay = TimeSpan.FromSeconds(5), RetryMaxDelay = TimeSpan.FromSeconds(1) };

        Assert.Contains(Validate(options), r => r.ErrorMessage!.StartsWith("ClusterQueue:Sqs:RetryMaxDelay", StringComparison.Ordinal));
    }

    private static List<ValidationResult> Validate(SqsOptions options)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        return results;
    }
}
