using System.ComponentModel.DataAnnotations;
using ClusterQueue.Node.Ingress;

namespace ClusterQueue.Tests.Ingress;

public sealed class IngressOptionsTests
{
    [Fact]
    public void Defaults_AreValid_AWaitOf30sAndResultsUpTo1MiB()
    {
        var options = new IngressOptions();

        Assert.Empty(Validate(options));
        Assert.Equal(TimeSpan.FromSeconds(30), options.MaxWait);
        Assert.Equal(1024 * 1024, options.MaxResultBytes);
    }

    [Theory]
    [InlineData("MaxWait", "00:00:00", "ClusterQueue:Ingress:MaxWait")]
    [InlineData("MaxWait", "00:10:01", "ClusterQueue:Ingress:MaxWait")]
    [InlineData("MaxResultBytes", "-1", "ClusterQueue:Ingress:MaxResultBytes")]
    [InlineData("MaxResultBytes", "33554433", "ClusterQueue:Ingress:MaxResultBytes")]
    public void BadSetting_FailsWithAMessageNamingItsKey(string property, string value, string key)
    {
        var options = new IngressOptions();
        var target = typeof(IngressOptions).GetProperty(property)!;
        target.SetValue(options, target.PropertyType == typeof(int) ? int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : TimeSpan.Parse(value, System.Globalization.CultureInfo.InvariantCulture));

        var message = Assert.Single(Validate(options)).ErrorMessage;

        Assert.StartsWith(key, message, StringComparison.Ordinal);
    }

    private static List<ValidationResult> Validate(IngressOptions options)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        return results;
    }
}
