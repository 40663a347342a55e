using System.Data.Common;
using System.Globalization;
using Microsoft.AspNetCore.Diagnostics;

namespace ClusterQueue.Node.Queueing;

/// <summary>
/// Answers any request that failed because the queue's service (SQS) or the store's database is unavailable with 503,
/// a Retry-After and problem details. Nothing was acknowledged, so the client's retry is safe; a database connection
/// that broke during a commit may have committed it, which a retry with the same delivery id finds as a duplicate.
/// </summary>
internal sealed class QueueUnavailableHandler(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var (title, detail) = exception switch
        {
            QueueUnavailableException unavailable => ("Queue unavailable", unavailable.Message + " Nothing was stored; retry later."),
            DbException { IsTransient: true } => ("Store unavailable", "The database could not be reached; nothing was acknowledged. Retry later."),
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
