using System.Net;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>
/// Reads SQS's error codes, which come in two spellings: the JSON protocol's shape name
/// (<c>com.amazonaws.sqs#QueueDoesNotExist</c>) and the older query-protocol code
/// (<c>AWS.SimpleQueueService.NonExistentQueue</c>), which SQS still sends in the <c>x-amzn-query-error</c> header
/// and some compatible servers send as the type itself.
/// </summary>
internal static class SqsErrors
{
    public static SqsErrorKind Classify(string code, HttpStatusCode status)
    {
        var name = ShortName(code);
        return name switch
        {
            "QueueDoesNotExist" or "NonExistentQueue" => SqsErrorKind.QueueDoesNotExist,
            "ThrottlingException" or "Throttling" or "RequestThrottled" or "TooManyRequestsException" or "KmsThrottled"
                => SqsErrorKind.Throttled,
            "OverLimit" => SqsErrorKind.OverLimit,
            _ when status == HttpStatusCode.TooManyRequests => SqsErrorKind.Throttled,
            _ when (int)status >= 500 => SqsErrorKind.Unavailable,
            "AccessDenied" or "AccessDeniedException" or "InvalidClientTokenId" or "SignatureDoesNotMatch"
                or "ExpiredToken" or "IncompleteSignature" or "MissingAuthenticationToken" or "UnrecognizedClientException"
                => SqsErrorKind.Other,
            _ when (int)status >= 400 => SqsErrorKind.InvalidRequest,
            _ => SqsErrorKind.Other,
        };
    }

    /// <summary>Throttling and server faults pass; anything else the client got wrong fails the same way again.</summary>
    public static bool IsTransient(SqsErrorKind kind) => kind is SqsErrorKind.Throttled or SqsErrorKind.Unavailable;

    /// <summary><c>com.amazonaws.sqs#QueueDoesNotExist</c> → <c>QueueDoesNotExist</c>; <c>AWS.SimpleQueueService.NonExistentQueue</c> → <c>NonExistentQueue</c>.</summary>
    private static string ShortName(string code)
    {
        var hash = code.LastIndexOf('#');
        if (hash >= 0)
        {
            return code[(hash + 1)..];
        }

        const string queryPrefix = "AWS.SimpleQueueService.";
        return code.StartsWith(queryPrefix, StringComparison.Ordinal) ? code[queryPrefix.Length..] : code;
    }
}
