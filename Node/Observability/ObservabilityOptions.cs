using System.ComponentModel.DataAnnotations;

namespace ClusterQueue.Node.Observability;

/// <summary>Metrics and traces. Bound from ClusterQueue:Observability; OTLP itself is configured by the standard OTEL_* variables.</summary>
public sealed class ObservabilityOptions
{
    public const string Section = "ClusterQueue:Observability";

    /// <summary>
    /// Per-group series in /metrics: every group while there are at most this many, else this many with the largest
    /// backlogs and the rest summed under <c>group="(other)"</c>. A group has up to ten series, so 1,000 keeps a scrape
    /// near 10,000 series (hundreds of kilobytes), which one Prometheus takes from many nodes; 18,000 groups unbounded
    /// made a 1.9 MB scrape. The exporter keeps room for twice this many label values (about 1 KB each per
    /// group), hence the ceiling.
    /// </summary>
    [Range(1, 20_000, ErrorMessage = "ClusterQueue:Observability:MaxGroupSeries must be between 1 and 20000.")]
    public int MaxGroupSeries { get; set; } = 1000;

    /// <summary>
    /// Traces on or off. Unset, they are on exactly when an OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
    /// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): with nowhere to send them, recording spans would be cost for nothing.
    /// </summary>
    public bool? Traces { get; set; }

    /// <summary>
    /// How often the backlog per group is read for OTLP when nothing scrapes /metrics (a scrape reads it itself first).
    /// A quarter of OTLP's default 60 s export interval: exports see a backlog at most this old.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "ClusterQueue:Observability:BacklogRefreshInterval must be between 1 second and 1 hour.")]
    public TimeSpan BacklogRefreshInterval { get; set; } = TimeSpan.FromSeconds(15);
}
