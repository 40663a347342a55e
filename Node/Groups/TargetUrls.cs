namespace ClusterQueue.Node.Groups;

/// <summary>
/// The user:password@ part of a target URL. The forwarder never sends it (HttpClient does not turn it into a header),
/// so it only ever served to store a password in plain text and show it to every reader of the admin API.
/// </summary>
public static class TargetUrls
{
    /// <summary>Whether the URL names a user, a password, or just an '@' before its host.</summary>
    public static bool HasUserInfo(Uri url) =>
        url.GetComponents(UriComponents.UserInfo | UriComponents.KeepDelimiter, UriFormat.UriEscaped).Length > 0;

    /// <summary>The URL as the API shows it: as given, less any user info (which a definition stored before it was refused may hold).</summary>
    public static string Shown(Uri url) =>
        HasUserInfo(url) ? url.GetComponents(UriComponents.AbsoluteUri & ~UriComponents.UserInfo, UriFormat.UriEscaped) : url.OriginalString;
}
