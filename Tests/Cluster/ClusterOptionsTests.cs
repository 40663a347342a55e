using System.ComponentModel.DataAnnotations;
using ClusterQueue.Node.Cluster;

namespace ClusterQueue.Tests.Cluster;

public sealed class ClusterOptionsTests
{
    [Fact]
    public void Defaults_AreValid()
    {
        var (valid, results) = Validate(new ClusterOptions());

        Assert.True(valid, string.Join("; ", results.Select(r => r.ErrorMessage)));
        Assert.Empty(results);
    }

    [Fact]
    public void RenewInterval_NotFittingTwiceIntoTtlMinusMargin_FailsNamingRenewInterval()
    {
        var options = new ClusterOptions
        {
            LeaseTtl = TimeSpan.FromSeconds(10),
            SafetyMargin = TimeSpan.FromSeconds(3),
            RenewInterval = TimeSpan.FromSeconds(5),
        };

        var (valid, results) = Validate(options);

        Assert.False(valid);
        var result = Assert.Single(results);
        Assert.Contains("ClusterQueue:Cluster:RenewInterval", result.ErrorMessage);
    }

    [Fact]
    public void RenewInterval_FittingExactlyTwiceIntoTtlMinusMargin_IsValid()
    {
        var options = new ClusterOptions
        {
            LeaseTtl = TimeSpan.FromSeconds(10),
            SafetyMargin = TimeSpan.FromSeconds(2),
            RenewInterval = TimeSpan.FromSeconds(4),
        };

        var (valid, results) = Validate(options);

        Assert.True(valid, string.Join("; ", results.Select(r => r.ErrorMessage)));
    }

    [Fact]
    public void LeaseTtl_UnderOneSecond_FailsNamingLeaseTtl()
    {
        var options = new ClusterOptions { LeaseTtl = TimeSpan.FromMilliseconds(999) };

        var (valid, results) = Validate(options);

        Assert.False(valid);
        Assert.Contains(results, r => r.ErrorMessage!.Contains("ClusterQueue:Cluster:LeaseTtl", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(65_537)]
    public void Shards_OutOfRange_FailsNamingShards(int shards)
    {
        var options = new ClusterOptions { Shards = shards };

        var (valid, results) = Validate(options);

        Assert.False(valid);
        var result = Assert.Single(results);
        Assert.Contains("ClusterQueue:Cluster:Shards", result.ErrorMessage);
        Assert.Contains(nameof(ClusterOptions.Shards), result.MemberNames);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(65_536)]
    public void Shards_AtTheLimits_AreValid(int shards)
    {
        var (valid, results) = Validate(new ClusterOptions { Shards = shards });

        Assert.True(valid, string.Join("; ", results.Select(r => r.ErrorMessage)));
    }

    private static (bool Valid, List<ValidationResult> Results) Validate(ClusterOptions options)
    {
        var results = new List<ValidationResult>();
        var valid = Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        return (valid, results);
    }
}
