namespace ClusterQueue.Node.Ingress.Verification;

/// <summary>
/// The three headers of a Standard Webhooks delivery. Svix, the service the specification came from, sends them as
/// <c>svix-id</c>, <c>svix-timestamp</c> and <c>svix-signature</c> (the <c>webhook-*</c> names only for white-labelled
/// accounts); both sign the same content the same way. A request uses one set whole: as soon as any <c>webhook-*</c>
/// header is present that set is the one checked, otherwise the <c>svix-*</c> set, so an id, a timestamp and a
/// signature are never taken from different sets.
/// </summary>
public sealed record StandardWebhooksHeaders(string Id, string Timestamp, string Signature)
{
    public static readonly StandardWebhooksHeaders Standard = new("webhook-id", "webhook-timestamp", "webhook-signature");

    public static readonly StandardWebhooksHeaders Svix = new("svix-id", "svix-timestamp", "svix-signature");

    /// <summary>The set <paramref name="headers"/> uses; the standard one when it carries neither (whose headers are then missing).</summary>
    public static StandardWebhooksHeaders Of(IHeaderDictionary headers) =>
        !Standard.AnyIn(headers) && Svix.AnyIn(headers) ? Svix : Standard;

    private bool AnyIn(IHeaderDictionary headers) =>
        headers.ContainsKey(Id) || headers.ContainsKey(Timestamp) || headers.ContainsKey(Signature);
}
