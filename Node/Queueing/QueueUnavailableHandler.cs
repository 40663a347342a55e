using System.Globalization;
using Microsoft.AspNetCore.Diagnostics;

namespace ClusterQueue.Node.Queueing;

/// <summary>
/// Answers any request that failed because the queue's service is unavailable with 503, a Retry-After and problem
/// details. Nothing was acknowledged or changed, so the client's retry is always safe.
/// </summary>
internal sealed class QueueUnavailableHandler(IProblemDetailsService problems) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not QueueUnavailableException unavailable)
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
                Title = "Queue unavailable",
                Detail = unavailable.Message + " Nothing was stored; retry later.",
            },
        });
    }
}
