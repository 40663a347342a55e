namespace ClusterQueue.Node.Admin;

internal static partial class Log
{
    // A warning: without a token, a refused request is most likely a web page trying the operator's browser.
    [LoggerMessage(EventId = 900, Level = LogLevel.Warning, Message = "Refused {Method} {Path} on the admin API: {Reason}")]
    public static partial void Refused(ILogger logger, string method, string path, string reason);
}
