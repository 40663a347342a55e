using System.ComponentModel.DataAnnotations;
using System.Globalization;
using ClusterQueue.Node.Observability;

namespace ClusterQueue.Tests.Observability;

public sealed class ObservabilityOptionsTests
{
    [Fact]
    public void Defaults_AreValid_AThousandGroupsByName_TracesFollowingOtlp()
    {
        var options = new ObservabilityOptions();

        Assert.Empty(Validate(options));
        Assert.Equal(1000, options.MaxGroupSeries);
        Assert.Null(options.Traces);
        Assert.Equal(TimeSpan.FromSeconds(15), options.BacklogRefreshInterval);
    }

    [Theory]
    [InlineData("MaxGroupSeries", "0")]
    [InlineData("MaxGroupSeries", "20001")]
    [InlineData("BacklogRefreshInterval", "00:00:00.500")]
    [InlineData("BacklogRefreshInterval", "01:00:01")]
    public void BadSetting_FailsWithAMessageNamingItsKey(string property, string value)
    {
        var options = new ObservabilityOptions();
        var target = typeof(ObservabilityOptions).GetProperty(property)!;
        target.SetValue(options, target.PropertyType == typeof(int) ? int.Parse(value, CultureInfo.InvariantCulture) : TimeSpan.Parse(value, CultureInfo.InvariantCulture));

        var message = Assert.Single(Validate(options)).ErrorMessage;

        Assert.StartsWith($"{ObservabilityOptions.Section}:{property}", message, StringComparison.Ordinal);
    }

    private static List<ValidationResult> Validate(ObservabilityOptions options)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        return results;
    }
}
