using System.Globalization;
using System.Text;

namespace ClusterQueue.Tests.Support;

/// <summary>One sample of a Prometheus text exposition: the series name, its labels and its value.</summary>
public sealed record ExposedSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>
/// Reads /metrics as Prometheus does (labels parsed and unescaped, <c>name{} 1</c> the same series as <c>name 1</c>),
/// so tests assert on series and values rather than on how an exporter happens to lay out a line.
/// </summary>
public static class Exposition
{
    public static IReadOnlyList<ExposedSample> Parse(string text)
    {
        var samples = new List<ExposedSample>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var i = 0;
            while (i < line.Length && line[i] is not '{' and not ' ')
            {
                i++;
            }

            var name = line[..i];
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (i < line.Length && line[i] == '{')
            {
                i++;
                while (line[i] != '}')
                {
                    var equals = line.IndexOf('=', i);
                    var key = line[i..equals].Trim(',', ' ');
                    var value = new StringBuilder();
                    var j = equals + 2;
                    for (; line[j] != '"'; j++)
                    {
                        if (line[j] == '\\')
                        {
                            j++;
                            value.Append(line[j] == 'n' ? '\n' : line[j]);
                        }
                        else
                        {
                            value.Append(line[j]);
                        }
                    }

                    labels[key] = value.ToString();
                    i = j + 1;
                    if (line[i] == ',')
                    {
                        i++;
                    }
                }

                i++;
            }

            var rest = line[i..].Trim().Split(' ');
            samples.Add(new ExposedSample(name, labels, double.Parse(rest[0], CultureInfo.InvariantCulture)));
        }

        return samples;
    }

    /// <summary>The value of the series with exactly these labels, or null when the exposition has none.</summary>
    public static double? Value(string text, string name, params (string Key, string Value)[] labels) =>
        Parse(text).FirstOrDefault(s => s.Name == name && s.Labels.Count == labels.Length && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value))?.Value;

    /// <summary>Every series of the metric, by the value of one label.</summary>
    public static IReadOnlyDictionary<string, double> ByLabel(string text, string name, string label) =>
        Parse(text).Where(s => s.Name == name && s.Labels.ContainsKey(label)).ToDictionary(s => s.Labels[label], s => s.Value, StringComparer.Ordinal);
}
