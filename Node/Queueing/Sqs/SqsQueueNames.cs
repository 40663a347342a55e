using System.Security.Cryptography;
using System.Text;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>
/// The SQS queue name of a group. SQS allows up to 80 letters, digits, '-' and '_'; group ids also allow '.' and run
/// to 128 characters. A group id that fits is used as it is after the prefix, so queues are easy to find in the AWS
/// console. One that does not keeps a readable start ('.' becomes '_') and ends in 16 hex digits of its SHA-256:
/// 64 bits, so the odds that any two of 100,000 such groups collide are below one in a billion.
/// </summary>
public static class SqsQueueNames
{
    public const int MaxLength = 80;

    private const int HashHexDigits = 16;

    public static string For(string prefix, string groupId)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        if (prefix.Length + groupId.Length <= MaxLength && !groupId.Contains('.'))
        {
            return prefix + groupId;
        }

        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(groupId)))[..HashHexDigits];
        var readable = groupId.Replace('.', '_');
        var room = MaxLength - prefix.Length - 1 - HashHexDigits;
        return $"{prefix}{(readable.Length > room ? readable[..room] : readable)}-{hash}";
    }
}
