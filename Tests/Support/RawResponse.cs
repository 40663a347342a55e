using System.Text;

namespace ClusterQueue.Tests.Support;

/// <summary>An HTTP/1.1 response as read off a raw socket: status, headers (names in any case) and the decoded body.</summary>
public sealed record RawResponse(int Status, IReadOnlyDictionary<string, string> Headers, byte[] Body)
{
    public string Text => Encoding.UTF8.GetString(Body);
}
