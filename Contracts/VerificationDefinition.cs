namespace ClusterQueue.Contracts;

/// <summary>How ingress authenticates the sender: scheme is standard-webhooks, github, stripe, shopify or hmac-sha256.</summary>
public sealed record VerificationDefinition
{
    public string? Scheme { get; init; }
    public string? Secret { get; init; }
}
