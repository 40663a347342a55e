using System.ComponentModel.DataAnnotations;

namespace ClusterQueue.Node.Ingress;

/// <summary>Ingress behaviour. Bound from ClusterQueue:Ingress.</summary>
public sealed class IngressOptions
{
    public const string Section = "ClusterQueue:Ingress";

    /// <summary>Senders retry for hours (GitHub, Stripe, Shopify up to days); a day covers the retries that matter.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "30.00:00:00", ErrorMessage = "ClusterQueue:Ingress:DeduplicationWindow must be between 0 and 30 days.")]
    public TimeSpan DeduplicationWindow { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Five minutes, as Standard Webhooks and Stripe recommend: room for clock skew, little for a replay.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00", ErrorMessage = "ClusterQueue:Ingress:SignatureTolerance must be between 1 second and 1 day.")]
    public TimeSpan SignatureTolerance { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The furthest ahead a delayed message may be scheduled. A week covers "try again next Monday" while
    /// keeping a typo (seconds meant as milliseconds) from parking a message for years.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "365.00:00:00", ErrorMessage = "ClusterQueue:Ingress:MaxDelay must be between 0 and 365 days.")]
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromDays(7);

    /// <summary>The longest a sender may wait for a message's result (?wait=); a longer wait is cut to this. Thirty
    /// seconds stays inside common load balancer and client timeouts.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00", ErrorMessage = "ClusterQueue:Ingress:MaxWait must be between 1 second and 10 minutes.")]
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The largest downstream answer body kept for a sender waiting on a message (?wait=); a larger body is
    /// not kept (the status and content type are). A result is an answer for a waiting client, not a file store, and
    /// it lives in the message's row until the delivered status expires.</summary>
    [Range(0, 32 * 1024 * 1024, ErrorMessage = "ClusterQueue:Ingress:MaxResultBytes must be between 0 and 33554432 (32 MiB).")]
    public int MaxResultBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// The most bytes of request bodies this node holds at once while receiving them, over all uploads in progress; an
    /// upload that would pass it is answered 503 with Retry-After. Bytes count as they arrive, not as declared, and a
    /// body is held twice for a moment while its pieces are joined. By default a quarter of the memory the runtime
    /// may use (it honours container limits and DOTNET_GCHeapHardLimit), so a flood of uploads is refused long
    /// before it could exhaust memory, leaving the rest to the store, the queue and the runtime; but at least 64 MiB,
    /// so one body at the largest maxPayloadBytes a group may have (32 MiB, held twice) always fits.
    /// </summary>
    [Range(typeof(long), "1048576", "9223372036854775807", ErrorMessage = "ClusterQueue:Ingress:MaxBufferedBytes must be at least 1048576 (1 MiB).")]
    public long MaxBufferedBytes { get; set; } = DefaultMaxBufferedBytes();

    /// <summary>A quarter of the memory available to the GC, and at least 64 MiB.</summary>
    public static long DefaultMaxBufferedBytes() =>
        Math.Max(64L * 1024 * 1024, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);
}
