using System.Globalization;
using System.Text;

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

    /// <summary>How the body is carried: absent for text as it is, else one of the values below.</summary>
    public const string BodyAttribute = "cq-body";

    private const string Base64Body = "base64";
    private const string EmptyBody = "empty";
    private const string OffloadedBody = "payload-store";

    /// <summary>SQS refuses an empty body, so an empty message carries this placeholder and says so.</summary>
    private const string Placeholder = "-";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static SqsOutgoingMessage Encode(string id, DateTimeOffset createdAt, string? contentType, byte[] body, int spentAttempts, bool offloaded, TimeSpan delay = default, DateTimeOffset? notBefore = null, bool wantsResult = false, int step = 1, string? cursor = null)
    {
        var attributes = new Dictionary<string, SqsMessageAttribute>(5)
        {
            [IdAttribute] = SqsMessageAttribute.String(id),
            [CreatedAttribute] = SqsMessageAttribute.Number(createdAt.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)),
        };

        // SQS refuses empty attribute values, so an absent content type is an absent attribute.
        if (!string.IsNullOrEmpty(contentType))
        {
            attributes[ContentTypeAttribute] = SqsMessageAttribute.String(contentType);
        }

        if (cursor is not null)
        {
            attributes[StepAttribute] = SqsMessageAttribute.Number(step.ToString(CultureInfo.InvariantCulture));
            attributes[CursorAttribute] = SqsMessageAttribute.String(cursor);
        }

        if (wantsResult)
        {
            attributes[WantsResultAttribute] = SqsMessageAttribute.String("1");
        }

        if (notBefore is { } due)
        {
            attributes[NotBeforeAttribute] = SqsMessageAttribute.Number(due.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        }

        if (spentAttempts > 0)
        {
            attributes[SpentAttribute] = SqsMessageAttribute.Number(spentAttempts.ToString(CultureInfo.InvariantCulture));
        }

        string text;
        if (offloaded)
        {
            attributes[BodyAttribute] = SqsMessageAttribute.String(OffloadedBody);
            text = Placeholder;
        }
        else if (body.Length == 0)
        {
            attributes[BodyAttribute] = SqsMessageAttribute.String(EmptyBody);
            text = Placeholder;
        }
        else if (TryText(body, out var asText))
        {
            text = asText;
        }
        else
        {
            attributes[BodyAttribute] = SqsMessageAttribute.String(Base64Body);
            text = Convert.ToBase64String(body);
        }

        return new SqsOutgoingMessage(text, delay, attributes);
    }

    /// <summary>The size SQS counts against its limit: the body's UTF-8 bytes plus each attribute's name, type and value.</summary>
    public static int Size(SqsOutgoingMessage message)
    {
        var size = Encoding.UTF8.GetByteCount(message.Body);
        foreach (var (name, attribute) in message.Attributes ?? new Dictionary<string, SqsMessageAttribute>())
        {
            size += Encoding.UTF8.GetByteCount(name) + Encoding.UTF8.GetByteCount(attribute.DataType)
                + (attribute.StringValue is { } value ? Encoding.UTF8.GetByteCount(value) : attribute.BinaryValue?.Length ?? 0);
        }

        return size;
    }

    /// <summary>Reads a received message back; false when it was not sent by ClusterQueue (no id or creation time).</summary>
    public static bool TryDecode(SqsMessage message, out Decoded decoded)
    {
        decoded = default;
        if (!message.MessageAttributes.TryGetValue(IdAttribute, out var id) || string.IsNullOrEmpty(id.StringValue)
            || !message.MessageAttributes.TryGetValue(CreatedAttribute, out var created)
            || !long.TryParse(created.StringValue, NumberStyles.Integer, CultureInfo.InvariantCulture, out var createdMs))
        {
            return false;
        }

        var spent = message.MessageAttributes.TryGetValue(SpentAttribute, out var spentValue)
            && int.TryParse(spentValue.StringValue, NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : 0;
        var kind = message.MessageAttributes.TryGetValue(BodyAttribute, out var bodyKind) ? bodyKind.StringValue : null;
        byte[]? body;
        switch (kind)
        {
            case null:
                body = Encoding.UTF8.GetBytes(message.Body);
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
                    body = Convert.FromBase64String(message.Body);
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
            message.MessageAttributes.TryGetValue(ContentTypeAttribute, out var contentType) ? contentType.StringValue : null,
            spent,
            body,
            message.MessageAttributes.TryGetValue(NotBeforeAttribute, out var due)
                && long.TryParse(due.StringValue, NumberStyles.Integer, CultureInfo.InvariantCulture, out var dueMs)
                ? DateTimeOffset.FromUnixTimeMilliseconds(dueMs)
                : null,
            message.MessageAttributes.ContainsKey(WantsResultAttribute),
            message.MessageAttributes.TryGetValue(StepAttribute, out var step)
                && int.TryParse(step.StringValue, NumberStyles.Integer, CultureInfo.InvariantCulture, out var stepNumber) ? stepNumber : 1,
            message.MessageAttributes.TryGetValue(CursorAttribute, out var cursor) ? cursor.StringValue : null);
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
    public readonly record struct Decoded(string Id, DateTimeOffset CreatedAt, string? ContentType, int SpentAttempts, byte[]? Body, DateTimeOffset? NotBefore = null, bool WantsResult = false, int Step = 1, string? Cursor = null);
}
