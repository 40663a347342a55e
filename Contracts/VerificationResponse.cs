namespace ClusterQueue.Contracts;

/// <summary>The verification scheme of a group; hasSecret says a secret is stored without revealing it.</summary>
public sealed record VerificationResponse(string Scheme, bool HasSecret);
