using System.ComponentModel.DataAnnotations;

namespace ClusterQueue.Node.Queueing;

/// <summary>Housekeeping of the queue tables. Bound from ClusterQueue:Queueing.</summary>
public sealed class QueueOptions
{
    public const string Section = "ClusterQueue:Queueing";

    /// <summary>
    /// How long GET /v1/messages/{id} still answers "delivered": long enough for a sender to check on a message, short
    /// enough that the table stays small under a sustained burst. Dead letters are kept until redriven or their group removed.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "30.00:00:00", ErrorMessage = "ClusterQueue:Queueing:DeliveredRetention must be between 0 and 30 days.")]
    public TimeSpan DeliveredRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Often enough that expired rows never pile up, rare enough to be invisible in the write load.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "ClusterQueue:Queueing:PurgeInterval must be between 1 second and 1 hour.")]
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromMinutes(1);
}
