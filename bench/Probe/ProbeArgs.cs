using System.Globalization;

namespace ClusterQueue.Bench.Probe;

/// <summary>The command line: a subcommand, then --name value pairs and bare --flags.</summary>
public sealed class ProbeArgs
{
    private readonly Dictionary<string, string> _values;

    private ProbeArgs(string command, Dictionary<string, string> values)
    {
        Command = command;
        _values = values;
    }

    public string Command { get; }

    public bool Strict => _values.ContainsKey("strict");

    public static ProbeArgs? Parse(string[] args)
    {
        if (args.Length == 0 || args[0] is not ("latency" or "rate"))
        {
            return null;
        }

        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 1; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal))
            {
                return null;
            }

            var name = args[i][2..];
            var hasValue = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal);
            values[name] = hasValue ? args[++i] : "true";
        }

        return new ProbeArgs(args[0], values);
    }

    public string Text(string name, string? fallback = null) =>
        _values.TryGetValue(name, out var value) ? value : fallback ?? throw new ArgumentException($"--{name} is required.");

    public string? Optional(string name) => _values.GetValueOrDefault(name);

    public double Number(string name, double fallback) =>
        _values.TryGetValue(name, out var value) ? double.Parse(value, CultureInfo.InvariantCulture) : fallback;
}
