using System.ComponentModel.DataAnnotations;
using ClusterQueue.Node.Processing;

namespace ClusterQueue.Tests.Processing;

public sealed class ProcessingOptionsTests
{
    [Fact]
    public void Defaults_AreValid_APauseOfAtLeastASecond_AHundredThrottlesInARow_AndLinkLocalTargetsAllowed()
    {
        var options = new ProcessingOptions();

        Assert.Empty(Validate(options));
        Assert.Equal(TimeSpan.FromSeconds(1), options.MinThrottlePause);
        Assert.Equal(100, options.MaxConsecutiveThrottles);
        Assert.False(options.RefuseLinkLocalTargets);
    }

    [Theory]
    [InlineData(nameof(ProcessingOptions.MinThrottlePause), "00:00:00", "ClusterQueue:Processing:MinThrottlePause")]
    [InlineData(nameof(ProcessingOptions.MinThrottlePause), "01:00:00.001", "ClusterQueue:Processing:MinThrottlePause")]
    [InlineData(nameof(ProcessingOptions.MaxConsecutiveThrottles), "-1", "ClusterQueue:Processing:MaxConsecutiveThrottles")]
    [InlineData(nameof(ProcessingOptions.MaxConsecutiveThrottles), "100001", "ClusterQueue:Processing:MaxConsecutiveThrottles")]
    public void BadSetting_FailsWithAMessageNamingItsKey(string property, string value, string key)
    {
        var options = new ProcessingOptions();
        var target = typeof(ProcessingOptions).GetProperty(property)!;
        target.SetValue(options, target.PropertyType == typeof(int) ? int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : TimeSpan.Parse(value, System.Globalization.CultureInfo.InvariantCulture));

        var message = Assert.Single(Validate(options)).ErrorMessage;

        Assert.StartsWith(key, message, StringComparison.Ordinal);
    }

    [Fact]
    public void MinThrottlePause_AboveTheMaximum_FailsNamingBoth()
    {
        var options = new ProcessingOptions { MinThrottlePause = TimeSpan.FromMinutes(2), MaxThrottlePause = TimeSpan.FromMinutes(1) };

        var message = Assert.Single(Validate(options)).ErrorMessage;

        Assert.Contains("ClusterQueue:Processing:MinThrottlePause", message, StringComparison.Ordinal);
        Assert.Contains("ClusterQueue:Processing:MaxThrottlePause", message, StringComparison.Ordinal);
    }

    private static List<ValidationResult> Validate(ProcessingOptions options)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        return results;
    }
}
