using System.ComponentModel.DataAnnotations;

namespace ClusterQueue.Node.Processing;

/// <summary>How actors lease and hand over messages, and how the forwarder treats targets. Bound from ClusterQueue:Processing.</summary>
public sealed class ProcessingOptions : IValidatableObject
{
    public const string Section = "ClusterQueue:Processing";

    /// <summary>
    /// Renewed every third of itself while a handler runs, so a live node never loses a lease to a slow handler;
    /// a crashed node's messages come back within this time.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "ClusterQueue:Processing:LeaseDuration must be between 1 second and 1 hour.")]
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Fits inside Kubernetes' default 30 s grace period with time left to hand unfinished messages back.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00", ErrorMessage = "ClusterQueue:Processing:DrainTimeout must be between 0 and 10 minutes.")]
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>A downstream's Retry-After is obeyed up to this long; beyond it a typo in a header would stall a group for days.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00", ErrorMessage = "ClusterQueue:Processing:MaxThrottlePause must be between 1 second and 1 day.")]
    public TimeSpan MaxThrottlePause { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// A throttled group waits at least this long, whatever Retry-After said: "0", a negative delta or a date in the past
    /// would otherwise call the downstream again at once, in a loop, each turn a store write. A second is what
    /// Retry-After's own unit allows for, and a downstream that is slowing callers down gets at most one call a second.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00", ErrorMessage = "ClusterQueue:Processing:MinThrottlePause must be between 1 millisecond and 1 hour.")]
    public TimeSpan MinThrottlePause { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How many throttled attempts (429/503 with Retry-After) in a row a message may have without counting them; from the
    /// next one on, each counts against the group's maxAttempts, so a downstream that refuses a message forever sends it
    /// to the dead letters instead of keeping it forever. Any other outcome starts the count again. 100: a downstream
    /// that is only pacing its callers lets a message through long before refusing it a hundred times in a row, and at
    /// the 1 s minimum pause one that never will holds it about two minutes before its attempts start to count.
    /// 0 counts every throttled attempt.
    /// </summary>
    [Range(0, 100_000, ErrorMessage = "ClusterQueue:Processing:MaxConsecutiveThrottles must be between 0 and 100000.")]
    public int MaxConsecutiveThrottles { get; set; } = 100;

    /// <summary>
    /// Refuse to connect to link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254, and
    /// their IPv4-mapped forms), checked on every address a target's name resolves to, at connect time, so a name that
    /// points there is refused too. Off by default: a node on a developer machine or beside its targets may need them;
    /// turn it on where group definitions come from people who should not reach the instance's credentials.
    /// </summary>
    public bool RefuseLinkLocalTargets { get; set; }

    /// <summary>A safety net for a lost wake-up: groups with visible messages and no actor are found within this time.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "ClusterQueue:Processing:RecoverySweepInterval must be between 1 second and 1 hour.")]
    public TimeSpan RecoverySweepInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Handler calls in flight on this node at most, over all groups (each group also has its maxConcurrency). Each
    /// call holds a connection to its downstream: a node restarting into many busy groups must not open them all at once.
    /// </summary>
    [Range(1, 100_000, ErrorMessage = "ClusterQueue:Processing:MaxCallsInFlight must be between 1 and 100000.")]
    public int MaxCallsInFlight { get; set; } = 1000;

    /// <summary>Caps one lease call so a group with a huge burst and concurrency still commits in short transactions.</summary>
    [Range(1, 1000, ErrorMessage = "ClusterQueue:Processing:MaxLeaseBatch must be between 1 and 1000.")]
    public int MaxLeaseBatch { get; set; } = 100;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (MinThrottlePause > MaxThrottlePause)
        {
            yield return new ValidationResult(
                $"ClusterQueue:Processing:MinThrottlePause ({MinThrottlePause}) must not exceed ClusterQueue:Processing:MaxThrottlePause ({MaxThrottlePause}).",
                [nameof(MinThrottlePause), nameof(MaxThrottlePause)]);
        }
    }
}
