namespace ClusterQueue.Bench.Probe;

/// <summary>Nearest-rank percentiles of a sample set, in milliseconds; every value is kept, so there is no bucketing error.</summary>
public sealed class Percentiles
{
    private readonly double[] _sorted;

    public Percentiles(IEnumerable<double> values)
    {
        _sorted = values.ToArray();
        Array.Sort(_sorted);
    }

    public int Count => _sorted.Length;

    public double At(double quantile)
    {
        if (_sorted.Length == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(quantile * _sorted.Length) - 1;
        return _sorted[Math.Clamp(rank, 0, _sorted.Length - 1)];
    }

    public double Max => _sorted.Length == 0 ? double.NaN : _sorted[^1];

    public string Summary() => $"p50 {At(0.50),7:0.000} ms  p99 {At(0.99),7:0.000} ms  p99.9 {At(0.999),7:0.000} ms  max {Max,7:0.000} ms  (n={Count})";
}
