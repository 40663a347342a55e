using System.ComponentModel.DataAnnotations;

namespace ClusterQueue.Node.Queueing;

/// <summary>Housekeeping of the queue tables. Bound from ClusterQueue:Queueing.</summary>
public sealed class QueueOptions
{
    public const string Section = "ClusterQueue:Queueing";

    /// <summary>
    /// How long GET /v1/messages/{id} still answers "delivered": long enough for a sender to check on a message, short
    /// enough that the table stays small under a sustained burst. Dead letters are kept for DeadLetterRetention.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "30.00:00:00", ErrorMessage = "ClusterQueue:Queueing:DeliveredRetention must be between 0 and 30 days.")]
    public TimeSpan DeliveredRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Often enough that expired rows never pile up, rare enough to be invisible in the write load.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "ClusterQueue:Queueing:PurgeInterval must be between 1 second and 1 hour.")]
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long a dead letter is kept (with its body and attempt history) before the purge loop deletes it; zero keeps
    /// them until redriven, purged or their group removed. Two weeks outlast a holiday's unnoticed outage.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "3650.00:00:00", ErrorMessage = "ClusterQueue:Queueing:DeadLetterRetention must be between 0 (keep) and 3650 days.")]
    public TimeSpan DeadLetterRetention { get; set; } = TimeSpan.FromDays(14);
}
