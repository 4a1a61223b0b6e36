using System.IO.Pipelines;

namespace WsWeb.Proxy.Listener;

/// <summary>
/// A reader that tells, once, how the first read from it went: data, the end of the stream, or an exception. It holds
/// nothing up: every call goes straight to the reader it wraps, and it only looks at what the first read brought.
/// </summary>
/// <remarks>
/// In TLS 1.3 the server's side of the handshake is done before the client has checked the certificate, so a client
/// that refuses it says so with its first record (an alert), read by whoever reads first: here, Kestrel.
/// </remarks>
internal sealed class FirstReadWatch(PipeReader inner, Action<ReadResult?, Exception?> first) : PipeReader
{
    private int _seen;

    public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _seen) != 0)
        {
            return await inner.ReadAsync(cancellationToken);
        }

        ReadResult result;
        try
        {
            result = await inner.ReadAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Report(null, ex);
            throw;
        }

        Report(result, null);
        return result;
    }

    public override bool TryRead(out ReadResult result)
    {
        if (!inner.TryRead(out result))
        {
            return false;
        }

        Report(result, null);
        return true;
    }

    public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

    public override void CancelPendingRead() => inner.CancelPendingRead();

    public override void Complete(Exception? exception = null) => inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

    private void Report(ReadResult? result, Exception? exception)
    {
        // A read cancelled before anything came (CancelPendingRead) says nothing about the client yet.
        if (result is { IsCanceled: true, Buffer.IsEmpty: true, IsCompleted: false })
        {
            return;
        }

        if (Interlocked.Exchange(ref _seen, 1) == 0)
        {
            first(result, exception);
        }
    }
}
