namespace ClusterQueue.Node.Admin;

/// <summary>Who may use /v1/*. Bound from the ClusterQueue section.</summary>
public sealed class AdminOptions
{
    public const string Section = "ClusterQueue";

    /// <summary>Bearer token for /v1/*. Without one, /v1/* answers loopback clients only, which is safe for one embedded node on a laptop.</summary>
    public string? AdminToken { get; set; }
}
