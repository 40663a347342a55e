using System.Globalization;
using System.Text;
using Amazon.SQS.Model;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>
/// How a ClusterQueue message travels in an SQS message. The body goes as it is when it is UTF-8 text SQS accepts
/// (most webhooks are JSON), else base64, because an SQS body must be XML-safe text; a body too large for SQS stays
/// in the payload store and the SQS message names it. Everything else rides in message attributes.
/// </summary>
public static class SqsEnvelope
{
    public const string IdAttribute = "cq-id";
    public const string CreatedAttribute = "cq-created";
    public const string ContentTypeAttribute = "cq-content-type";

    /// <summary>Attempts spent before this copy was sent (a throttled or released message is sent again, uncounted).</summary>
    public const string SpentAttribute = "cq-spent";

    /// <summary>When a delayed message is due (unix ms), if that is beyond the delay of the copy that carries it.</summary>
    public const string NotBeforeAttribute = "cq-not-before";

    /// <summary>A continued message's step (absent: 1) and the cursor the previous step returned.</summary>
    public const string StepAttribute = "cq-step";

    public const string CursorAttribute = "cq-cursor";

    /// <summary>Present ("1") when a sender waits for the message's result.</summary>
    public const string WantsResultAttribute = "cq-wants-result";

    /// <summary>
    /// The W3C trace context the message was ingested in, under the name OpenTelemetry's SQS propagation uses. With it
    /// a copy may carry ten attributes, SQS's limit: no other may be added.
    /// </summary>
    public const string TraceParentAttribute = "traceparent";

    /// <summary>How the body is carried: absent for text as it is, else one of the values below.</summary>
    public const string BodyAttribute = "cq-body";

    private const string Base64Body = "base64";
    private const string EmptyBody = "empty";
    private const string OffloadedBody = "payload-store";

    /// <summary>SQS refuses an empty body, so an empty message carries this placeholder and says so.</summary>
    private const string Placeholder = "-";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static SqsOutgoingMessage Encode(string id, DateTimeOffset createdAt, string? contentType, byte[] body, int spentAttempts, bool offloaded, TimeSpan delay = default, DateTimeOffset? notBefore = null, bool wantsResult = false, int step = 1, string? cursor = null, string? traceParent = null)
    {
        var attributes = new Dictionary<string, MessageAttributeValue>(5)
        {
            [IdAttribute] = SqsOutgoingMessage.Text(id),
            [CreatedAttribute] = SqsOutgoingMessage.Number(createdAt.ToUnixTimeMilliseconds()),
        };

        // SQS refuses empty attribute values, so an absent content type is an absent attribute.
        if (!string.IsNullOrEmpty(contentType))
        {
            attributes[ContentTypeAttribute] = SqsOutgoingMessage.Text(contentType);
        }

        if (cursor is not null)
        {
            attributes[StepAttribute] = SqsOutgoingMessage.Number(step);
            attributes[CursorAttribute] = SqsOutgoingMessage.Text(cursor);
        }

        if (wantsResult)
        {
            attributes[WantsResultAttribute] = SqsOutgoingMessage.Text("1");
        }

        if (!string.IsNullOrEmpty(traceParent))
        {
            attributes[TraceParentAttribute] = SqsOutgoingMessage.Text(traceParent);
        }

        if (notBefore is { } due)
        {
            attributes[NotBeforeAttribute] = SqsOutgoingMessage.Number(due.ToUnixTimeMilliseconds());
        }

        if (spentAttempts > 0)
        {
            attributes[SpentAttribute] = SqsOutgoingMessage.Number(spentAttempts);
        }

        string text;
        if (offloaded)
        {
            attributes[BodyAttribute] = SqsOutgoingMessage.Text(OffloadedBody);
            text = Placeholder;
        }
        else if (body.Length == 0)
        {
            attributes[BodyAttribute] = SqsOutgoingMessage.Text(EmptyBody);
            text = Placeholder;
        }
        else if (TryText(body, out var asText))
        {
            text = asText;
        }
        else
        {
            attributes[BodyAttribute] = SqsOutgoingMessage.Text(Base64Body);
            text = Convert.ToBase64String(body);
        }

        return new SqsOutgoingMessage(text, delay, attributes);
    }

    /// <summary>Reads a received message back; false when it was not sent by ClusterQueue (no id or creation time).</summary>
    public static bool TryDecode(Message message, out Decoded decoded)
    {
        decoded = default;
        var attributes = message.MessageAttributes ?? [];
        var text = message.Body ?? "";
        if (!attributes.TryGetValue(IdAttribute, out var id) || string.IsNullOrEmpty(id.StringValue)
            || !attributes.TryGetValue(CreatedAttribute, out var created)
            || !long.TryParse(created.StringValue, NumberStyles.Integer, CultureInfo.InvariantCulture, out var createdMs))
        {
            return false;
        }

        var spent = attributes.TryGetValue(SpentAttribute, out var spentValue)
            && int.TryParse(spentValue.StringValue, NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : 0;
        var kind = attributes.TryGetValue(BodyAttribute, out var bodyKind) ? bodyKind.StringValue : null;
        byte[]? body;
        switch (kind)
        {
            case null:
                body = Encoding.UTF8.GetBytes(text);
                break;
            case EmptyBody:
                body = [];
                break;
            case OffloadedBody:
                body = null;
                break;
            case Base64Body:
                try
                {
                    body = Convert.FromBase64String(text);
                }
                catch (FormatException)
                {
                    return false;
                }

                break;
            default:
                return false;
        }

        decoded = new Decoded(
            id.StringValue,
            DateTimeOffset.FromUnixTimeMilliseconds(createdMs),
            attributes.TryGetValue(ContentTypeAttribute, out var contentType) ? contentType.StringValue : null,
            spent,
            body,
            attributes.TryGetValue(NotBeforeAttribute, out var due)
                && long.TryParse(due.StringValue, NumberStyles.Integer, CultureInfo.InvariantCulture, out var dueMs)
                ? DateTimeOffset.FromUnixTimeMilliseconds(dueMs)
                : null,
            attributes.ContainsKey(WantsResultAttribute),
            attributes.TryGetValue(StepAttribute, out var step)
                && int.TryParse(step.StringValue, NumberStyles.Integer, CultureInfo.InvariantCulture, out var stepNumber) ? stepNumber : 1,
            attributes.TryGetValue(CursorAttribute, out var cursor) ? cursor.StringValue : null,
            attributes.TryGetValue(TraceParentAttribute, out var traceParent) ? traceParent.StringValue : null);
        return true;
    }

    /// <summary>True when the bytes are UTF-8 made only of characters every SQS server takes in a body (XML 1.0's range below U+10000).</summary>
    private static bool TryText(byte[] body, out string text)
    {
        try
        {
            text = StrictUtf8.GetString(body);
        }
        catch (DecoderFallbackException)
        {
            text = "";
            return false;
        }

        foreach (var c in text)
        {
            // AWS also allows U+10000..U+10FFFF (surrogate pairs here), but compatible servers differ on them; such a
            // body (an emoji, say) goes as base64, which every server takes.
            if (!(c is '\t' or '\n' or '\r' || c is >= '\u0020' and <= '\uD7FF' || c is >= '\uE000' and <= '\uFFFD'))
            {
                text = "";
                return false;
            }
        }

        return true;
    }

    /// <summary>A received ClusterQueue message; Body is null when the payload store holds it.</summary>
    public readonly record struct Decoded(string Id, DateTimeOffset CreatedAt, string? ContentType, int SpentAttempts, byte[]? Body, DateTimeOffset? NotBefore = null, bool WantsResult = false, int Step = 1, string? Cursor = null, string? TraceParent = null);
}
