using System.ComponentModel.DataAnnotations;

namespace ClusterQueue.Node.Dashboard;

/// <summary>The browser dashboard's server side. Bound from ClusterQueue:Dashboard.</summary>
public sealed class DashboardOptions
{
    public const string Section = "ClusterQueue:Dashboard";

    /// <summary>
    /// How often the node records each busy group's numbers for the charts (and the delivered/failed per second the
    /// table shows, averaged over it). Five seconds draws a 15-minute chart in 180 points and costs one backlog read
    /// per interval, whatever the number of groups.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:01:00")]
    public TimeSpan SampleInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How far back the group page's charts reach: fifteen minutes shows an incident and its recovery.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "01:00:00")]
    public TimeSpan HistoryWindow { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// Groups with a chart history at once (about 7 KiB each at the defaults, so 7 MiB at most). A group gets one
    /// while it is busy and loses it after a whole window idle; past the limit further busy groups have none.
    /// </summary>
    [Range(0, 100_000)]
    public int MaxHistoryGroups { get; set; } = 1000;

    /// <summary>
    /// How long one read of every group's state serves the table: a tab polls every two seconds, and with 100,000
    /// groups a read costs tens of milliseconds, so several tabs share one read a second.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:10")]
    public TimeSpan TableMaxAge { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The most of a message body the dashboard shows: 64 KiB reads well as text or hex and stays quick.</summary>
    [Range(1, 1024 * 1024)]
    public int MaxBodyPreviewBytes { get; set; } = 64 * 1024;
}
