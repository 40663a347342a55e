using System.Net;
using System.Net.Sockets;
using Amazon.Runtime;
using Amazon.SQS.Model;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>
/// Reads what a failed SQS call means from the AWS SDK's exception, once its retries are spent. The SDK throws its
/// modelled exception where it knows the code; other codes come in two spellings, the JSON protocol's shape name
/// (<c>QueueDoesNotExist</c>, namespace stripped) and the older query-protocol code
/// (<c>AWS.SimpleQueueService.NonExistentQueue</c>), which some compatible servers send as the type itself.
/// </summary>
internal static class SqsErrors
{
    public static SqsErrorKind Classify(Exception exception) => exception switch
    {
        QueueDoesNotExistException => SqsErrorKind.QueueDoesNotExist,
        RequestThrottledException or KmsThrottledException => SqsErrorKind.Throttled,
        OverLimitException => SqsErrorKind.OverLimit,
        AmazonServiceException service => Classify(service.ErrorCode ?? "", service.StatusCode, service.ErrorType),

        // No answer at all: the SDK lets the transport's failure through (refused, reset, timed out).
        HttpRequestException or TimeoutException or IOException or SocketException => SqsErrorKind.Unavailable,
        _ => SqsErrorKind.Other,
    };

    /// <summary>
    /// By code first; then by status, where a refused batch entry (answered inside a 200) says through its error
    /// type whether SQS (<see cref="ErrorType.Receiver"/>) or the request (<see cref="ErrorType.Sender"/>) was at fault.
    /// </summary>
    public static SqsErrorKind Classify(string code, HttpStatusCode status, ErrorType type = ErrorType.Unknown)
    {
        var name = ShortName(code);
        return name switch
        {
            "QueueDoesNotExist" or "NonExistentQueue" => SqsErrorKind.QueueDoesNotExist,
            "ThrottlingException" or "Throttling" or "RequestThrottled" or "TooManyRequestsException" or "KmsThrottled"
                => SqsErrorKind.Throttled,
            "OverLimit" => SqsErrorKind.OverLimit,
            _ when status == HttpStatusCode.TooManyRequests => SqsErrorKind.Throttled,
            _ when (int)status >= 500 || type == ErrorType.Receiver => SqsErrorKind.Unavailable,
            "AccessDenied" or "AccessDeniedException" or "InvalidClientTokenId" or "SignatureDoesNotMatch"
                or "ExpiredToken" or "IncompleteSignature" or "MissingAuthenticationToken" or "UnrecognizedClientException"
                => SqsErrorKind.Other,
            _ when (int)status >= 400 || type == ErrorType.Sender => SqsErrorKind.InvalidRequest,
            _ => SqsErrorKind.Other,
        };
    }

    /// <summary>The queue is gone (deleted with its group, or by hand).</summary>
    public static bool IsMissingQueue(Exception exception) => Classify(exception) == SqsErrorKind.QueueDoesNotExist;

    /// <summary>SQS could not be reached or would not keep up: a caller answers it with 503 and Retry-After.</summary>
    public static bool IsOutage(Exception exception) =>
        Classify(exception) is SqsErrorKind.Unavailable or SqsErrorKind.Throttled or SqsErrorKind.OverLimit;

    /// <summary>Any failure of an SQS call: the service's answer, the SDK's own (no credentials), or the transport's.</summary>
    public static bool IsSqsFailure(Exception exception) =>
        exception is AmazonServiceException or AmazonClientException or HttpRequestException or TimeoutException or IOException or SocketException;

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
