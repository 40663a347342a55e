using System.Globalization;

namespace ClusterQueue.Bench.Probe;

/// <summary>Signed figures for the summaries.</summary>
public static class Signed
{
    // Rounded first, and -0 turned into 0: .NET prints a tiny negative value that rounds to zero as "-+0.000".
    public static string Format(double value, int decimals = 3)
    {
        var rounded = Math.Round(value, decimals) + 0.0;
        var digits = "0." + new string('0', decimals);
        return rounded.ToString($"+{digits};-{digits};{digits}", CultureInfo.InvariantCulture);
    }
}
