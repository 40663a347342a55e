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

    [Fact]
    public void Defaults_BufferAQuarterOfTheMemoryTheRuntimeMayUse_AndAtLeast64MiB()
    {
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

        var options = new IngressOptions();

        Assert.Equal(Math.Max(64L * 1024 * 1024, available / 4), options.MaxBufferedBytes);
        Assert.True(options.MaxBufferedBytes >= 2L * 32 * 1024 * 1024, "one body at the largest maxPayloadBytes, held twice, must fit");
    }

    [Theory]
    [InlineData("MaxBufferedBytes", "1048575", "ClusterQueue:Ingress:MaxBufferedBytes")]
    [InlineData("MaxBufferedBytes", "0", "ClusterQueue:Ingress:MaxBufferedBytes")]
    [InlineData("MaxWait", "00:00:00", "ClusterQueue:Ingress:MaxWait")]
    [InlineData("MaxWait", "00:10:01", "ClusterQueue:Ingress:MaxWait")]
    [InlineData("MaxResultBytes", "-1", "ClusterQueue:Ingress:MaxResultBytes")]
    [InlineData("MaxResultBytes", "33554433", "ClusterQueue:Ingress:MaxResultBytes")]
    public void BadSetting_FailsWithAMessageNamingItsKey(string property, string value, string key)
    {
        var options = new IngressOptions();
        var target = typeof(IngressOptions).GetProperty(property)!;
        var culture = System.Globalization.CultureInfo.InvariantCulture;
        target.SetValue(options, target.PropertyType == typeof(int) ? int.Parse(value, culture)
            : target.PropertyType == typeof(long) ? long.Parse(value, culture)
            : TimeSpan.Parse(value, culture));

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
