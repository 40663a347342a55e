namespace ClusterQueue.Node.Ingress.Verification;

/// <summary>How ingress authenticates a sender. Wire names live in <see cref="VerificationSchemes"/>.</summary>
public enum VerificationScheme
{
    StandardWebhooks,
    GitHub,
    Stripe,
    Shopify,
    HmacSha256,
}
