using System.IO.Pipelines;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// The output Kestrel's HTTP layer writes a proxy connection through. Kestrel expects a transport's output
/// never to throw (its socket transport completes the pipe instead): it logs each failed flush as an error
/// and writes on. Over a stream, a client that has gone makes every flush throw, so the first failure here
/// aborts the connection instead (RequestAborted fires and the response copy stops) and reports the pipe
/// completed. The relay writes the inner writer directly and sees its errors as they are.
/// </summary>
internal sealed class KestrelOutput(PipeWriter inner, Action abort) : PipeWriter
{
    private static readonly FlushResult Completed = new(isCanceled: false, isCompleted: true);

    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes;

    public override void Advance(int bytes) => inner.Advance(bytes);

    public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

    public override void CancelPendingFlush() => inner.CancelPendingFlush();

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        ValueTask<FlushResult> flush;
        try
        {
            flush = inner.FlushAsync(cancellationToken);
        }
        catch (Exception ex) when (IsPeerGone(ex))
        {
            return new ValueTask<FlushResult>(Gone());
        }

        return flush.IsCompletedSuccessfully ? flush : AwaitAsync(flush);
    }

    public override void Complete(Exception? exception = null)
    {
        try
        {
            inner.Complete(exception);
        }
        catch (Exception ex) when (IsPeerGone(ex))
        {
            // Completing flushes the rest, to a client that is gone.
        }
    }

    public override async ValueTask CompleteAsync(Exception? exception = null)
    {
        try
        {
            await inner.CompleteAsync(exception);
        }
        catch (Exception ex) when (IsPeerGone(ex))
        {
            // Completing flushes the rest, to a client that is gone.
        }
    }

    private async ValueTask<FlushResult> AwaitAsync(ValueTask<FlushResult> flush)
    {
        try
        {
            return await flush;
        }
        catch (Exception ex) when (IsPeerGone(ex))
        {
            return Gone();
        }
    }

    private FlushResult Gone()
    {
        abort();
        return Completed;
    }

    private static bool IsPeerGone(Exception ex) => ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException;
}
