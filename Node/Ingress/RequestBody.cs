using System.Buffers;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace ClusterQueue.Node.Ingress;

/// <summary>
/// A request body read within its group's limit and the node's <see cref="UploadBudget"/>. Memory follows the bytes
/// that actually arrive: a request that declares a megabyte and sends nothing holds nothing. The bytes come off
/// Kestrel's own buffers into pooled pieces that grow as the body does, and are joined once the body is whole.
/// Dispose gives the budget back; until then <see cref="Bytes"/> counts against it.
/// </summary>
internal sealed class RequestBody : IDisposable
{
    // The first piece fits a typical webhook; later ones double up to a size that stays off the large object heap.
    private const int FirstPiece = 4 * 1024;
    private const int LargestPiece = 64 * 1024;

    private readonly UploadBudget _budget;
    private readonly List<byte[]> _pieces = [];
    private int _lastUsed;
    private long _held;

    private RequestBody(UploadBudget budget) => _budget = budget;

    public BodyReadOutcome Outcome { get; private set; }

    /// <summary>The whole body when <see cref="Outcome"/> is Complete; empty otherwise.</summary>
    public byte[] Bytes { get; private set; } = [];

    /// <summary>Body bytes received before reading ended.</summary>
    public long Received { get; private set; }

    /// <summary>For a cut body: the status to answer (400, or Kestrel's 408 for a body that came too slowly) and why.</summary>
    public int CutStatus { get; private set; }

    public string? CutReason { get; private set; }

    public static async Task<RequestBody> ReadAsync(HttpRequest request, long maxBytes, UploadBudget budget, CancellationToken cancellationToken)
    {
        var body = new RequestBody(budget);
        if (request.ContentLength is { } declared && declared > maxBytes)
        {
            body.Outcome = BodyReadOutcome.TooLarge;
            return body;
        }

        // The group's limit is counted here, in body bytes. Kestrel's own limit would count a chunked body's framing
        // too (a size line and two CRLFs per chunk) and refuse valid bodies; a declared length was checked above, and
        // Kestrel holds a body to its declared length itself. Reading stops at the first byte over, and what a refused
        // sender still sends Kestrel discards for at most its 5 s drain before closing the connection.
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = null;
        }

        // Only a complete body keeps its bytes; every other end, an unexpected exception included, gives them back here.
        var keep = false;
        try
        {
            body.Outcome = await body.FillAsync(request.BodyReader, request.ContentLength, maxBytes, cancellationToken);
            keep = body.Outcome == BodyReadOutcome.Complete;
        }
        catch (BadHttpRequestException bad) when (bad.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            body.Outcome = BodyReadOutcome.TooLarge;
        }
        catch (BadHttpRequestException bad)
        {
            // The body ended before its Content-Length, or came slower than Kestrel's minimum data rate.
            body.Cut(bad.StatusCode, bad.Message);
        }
        catch (Exception ex) when (ex is IOException or ConnectionAbortedException
            || (ex is OperationCanceledException && (cancellationToken.IsCancellationRequested || request.HttpContext.RequestAborted.IsCancellationRequested)))
        {
            // The client hung up (a reset connection is an IOException), or the server is stopping (which says so).
            body.Cut(StatusCodes.Status400BadRequest, ex is IOException or ConnectionAbortedException ? ex.Message : "The client hung up.");
        }
        finally
        {
            if (!keep)
            {
                body.Dispose();
            }
        }

        return body;
    }

    public void Dispose()
    {
        foreach (var piece in _pieces)
        {
            ArrayPool<byte>.Shared.Return(piece);
        }

        _pieces.Clear();
        _budget.Give(_held);
        _held = 0;

        // Nothing of the body stays reachable through this object once its bytes no longer count.
        Bytes = [];
    }

    private async Task<BodyReadOutcome> FillAsync(System.IO.Pipelines.PipeReader reader, long? declared, long maxBytes, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken);
            var buffer = result.Buffer;
            var stop = Append(buffer, maxBytes);
            reader.AdvanceTo(buffer.End);
            if (stop is { } outcome)
            {
                return outcome;
            }

            if (result.IsCompleted)
            {
                break;
            }

            if (result.IsCanceled)
            {
                Cut(StatusCodes.Status400BadRequest, "Reading the request body was cancelled.");
                return BodyReadOutcome.Cut;
            }
        }

        if (declared is { } length && Received < length)
        {
            Cut(StatusCodes.Status400BadRequest, "The request body ended before its Content-Length.");
            return BodyReadOutcome.Cut;
        }

        return Join() ? BodyReadOutcome.Complete : BodyReadOutcome.NoRoom;
    }

    /// <summary>Copies what arrived into the pieces; null to read on, or why reading stops.</summary>
    private BodyReadOutcome? Append(ReadOnlySequence<byte> buffer, long maxBytes)
    {
        if (Received + buffer.Length > maxBytes)
        {
            return BodyReadOutcome.TooLarge;
        }

        foreach (var segment in buffer)
        {
            var span = segment.Span;
            while (!span.IsEmpty)
            {
                if (_pieces.Count == 0 || _lastUsed == PieceSize(_pieces.Count - 1))
                {
                    // The pool may hand out a larger array than asked; only the bytes asked for are used and counted.
                    var size = PieceSize(_pieces.Count);
                    if (!_budget.TryTake(size))
                    {
                        return BodyReadOutcome.NoRoom;
                    }

                    _held += size;
                    _pieces.Add(ArrayPool<byte>.Shared.Rent(size));
                    _lastUsed = 0;
                }

                var room = Math.Min(span.Length, PieceSize(_pieces.Count - 1) - _lastUsed);
                span[..room].CopyTo(_pieces[^1].AsSpan(_lastUsed));
                _lastUsed += room;
                Received += room;
                span = span[room..];
            }
        }

        return null;
    }

    /// <summary>Joins the pieces into the body, which takes its own share of the budget before the pieces give theirs back.</summary>
    private bool Join()
    {
        if (Received == 0)
        {
            return true;
        }

        if (!_budget.TryTake(Received))
        {
            return false;
        }

        var bytes = GC.AllocateUninitializedArray<byte>(checked((int)Received));
        var at = 0;
        for (var i = 0; i < _pieces.Count; i++)
        {
            var used = i == _pieces.Count - 1 ? _lastUsed : PieceSize(i);
            _pieces[i].AsSpan(0, used).CopyTo(bytes.AsSpan(at));
            at += used;
        }

        // Hand the pieces back: from here the body holds exactly its own length.
        Dispose();
        _held = Received;
        Bytes = bytes;
        return true;
    }

    /// <summary>4, 8, 16, 32, then 64 KiB.</summary>
    private static int PieceSize(int index) => index >= 4 ? LargestPiece : FirstPiece << index;

    private void Cut(int status, string reason)
    {
        Outcome = BodyReadOutcome.Cut;
        CutStatus = status;
        CutReason = reason;
    }
}
