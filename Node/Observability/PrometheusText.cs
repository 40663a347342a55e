using System.Globalization;
using System.Text;

namespace ClusterQueue.Node.Observability;

/// <summary>Writes the Prometheus text exposition format (version 0.0.4): HELP and TYPE once per metric, then its samples.</summary>
internal sealed class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    private readonly StringBuilder _text = new();

    public void Metric(string name, string type, string help)
    {
        _text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        _text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
    }

    public void Sample(string name, double value, string? labelName = null, string? labelValue = null)
    {
        _text.Append(name);
        if (labelName is not null)
        {
            _text.Append('{').Append(labelName).Append("=\"").Append(Escape(labelValue ?? string.Empty)).Append("\"}");
        }

        _text.Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
    }

    public override string ToString() => _text.ToString();

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
