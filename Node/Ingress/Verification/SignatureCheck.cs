namespace ClusterQueue.Node.Ingress.Verification;

/// <summary>The outcome of checking a delivery's signature; only <see cref="Valid"/> may be accepted.</summary>
public enum SignatureCheck
{
    /// <summary>The signature matches and any timestamp is within tolerance.</summary>
    Valid,

    /// <summary>A required header is absent or empty.</summary>
    Missing,

    /// <summary>A header is malformed, duplicated, or the signature does not match.</summary>
    Invalid,

    /// <summary>The signature matches but its timestamp is too old or too far in the future.</summary>
    OutsideTolerance,
}
