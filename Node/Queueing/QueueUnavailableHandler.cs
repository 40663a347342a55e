using System.Globalization;
using ClusterQueue.Node.Storage;
using Microsoft.AspNetCore.Diagnostics;

namespace ClusterQueue.Node.Queueing;

/// <summary>
/// Answers any request that failed because the queue's service (SQS) or the store is unavailable with 503, a
/// Retry-After and problem details. That includes a store that refuses writes (disk full, I/O error, read-only, locked;
/// see <see cref="StoreFaults"/>), which heals without a restart once space or the disk is back: 503 with Retry-After
/// tells the sender the refusal is temporary and when to come back, where a 500 reads as a bug in the node. Nothing was
/// acknowledged, so the client's retry is safe; a database connection that broke during a commit may have committed
/// it, which a retry with the same delivery id finds as a duplicate.
/// </summary>
internal sealed class QueueUnavailableHandler(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var (title, detail) = exception switch
        {
            QueueUnavailableException unavailable => ("Queue unavailable", unavailable.Message + " Nothing was stored; retry later."),
            _ when StoreFaults.IsWriteFault(exception) => ("Store unavailable", "The store cannot take writes now (disk full, I/O error or database unreachable); nothing was acknowledged. Retry later."),
            _ when StoreFaults.IsRetryable(exception) => ("Store unavailable", "The database could not complete the request now; nothing was acknowledged. Retry later."),
            _ => (null, null),
        };
        if (title is null)
        {
            return false;
        }

        httpContext.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        httpContext.Response.Headers.RetryAfter = ((int)QueueUnavailableException.RetryAfter.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails =
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = title,
                Detail = detail,
            },
        });
    }
}
