using System.Net;

namespace ClusterQueue.Node.Queueing.Sqs;

/// <summary>An SQS call that failed for good: retries, where they made sense, have already been spent.</summary>
public sealed class SqsException : Exception
{
    public SqsException(SqsErrorKind kind, string errorCode, string message, HttpStatusCode? statusCode, Exception? innerException = null)
        : base($"SQS {errorCode}: {message}", innerException)
    {
        Kind = kind;
        ErrorCode = errorCode;
        ErrorMessage = message;
        StatusCode = statusCode;
    }

    public SqsErrorKind Kind { get; }

    /// <summary>The AWS error code as the server sent it (<c>__type</c>), e.g. <c>com.amazonaws.sqs#QueueDoesNotExist</c>.</summary>
    public string ErrorCode { get; }

    /// <summary>The server's own explanation, without the code.</summary>
    public string ErrorMessage { get; }

    /// <summary>The HTTP status of the last attempt; null when no answer arrived (connection failure or timeout).</summary>
    public HttpStatusCode? StatusCode { get; }
}
