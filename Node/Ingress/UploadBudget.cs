using Microsoft.Extensions.Options;

namespace ClusterQueue.Node.Ingress;

/// <summary>
/// The bytes that request bodies still being received hold on this node, kept under Ingress:MaxBufferedBytes. An
/// upload takes its share as its bytes arrive, never on the word of its Content-Length (a header costs a sender
/// nothing), and gives all of it back when its request is done with the body, however that ends.
/// </summary>
public sealed class UploadBudget(IOptions<IngressOptions> options)
{
    private static readonly TimeSpan WarnEvery = TimeSpan.FromMinutes(1);

    private long _held;
    private long _lastWarnedTicks = long.MinValue / 2;

    /// <summary>The most bytes uploads in progress may hold together.</summary>
    public long Limit { get; } = options.Value.MaxBufferedBytes;

    /// <summary>Bytes held right now.</summary>
    public long Held => Volatile.Read(ref _held);

    /// <summary>Takes <paramref name="bytes"/> if they fit under the limit; false (and nothing taken) if not.</summary>
    public bool TryTake(long bytes)
    {
        var held = Volatile.Read(ref _held);
        while (true)
        {
            if (held + bytes > Limit)
            {
                return false;
            }

            var seen = Interlocked.CompareExchange(ref _held, held + bytes, held);
            if (seen == held)
            {
                return true;
            }

            held = seen;
        }
    }

    public void Give(long bytes) => Interlocked.Add(ref _held, -bytes);

    /// <summary>
    /// True for the first refusal in a minute: a flood of refused uploads is one warning a minute, not one a request
    /// (the refusals themselves are counted in the metrics).
    /// </summary>
    public bool ShouldWarn(DateTimeOffset now)
    {
        var last = Interlocked.Read(ref _lastWarnedTicks);
        return now.UtcTicks - last >= WarnEvery.Ticks && Interlocked.CompareExchange(ref _lastWarnedTicks, now.UtcTicks, last) == last;
    }
}
