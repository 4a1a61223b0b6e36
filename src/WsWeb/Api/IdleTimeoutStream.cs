namespace WsWeb.Api;

/// <summary>
/// A request body that gives up when nothing arrives for <paramref name="idle"/>: each read that waits longer throws
/// <see cref="TimeoutException"/>. A deadline per read, not a rate: however much came before, a pause this long means
/// the sender stopped or is gone.
/// </summary>
/// <param name="total">
/// How long the whole body may take, however it trickles (<see cref="UploadTooLongException"/> past it): a pause is not
/// all a sender can stall with, and 40 bytes a tenth of a second would hold the reader for weeks. Null: no bound.
/// </param>
internal sealed class IdleTimeoutStream(Stream inner, TimeSpan idle, TimeSpan? total = null) : WsWeb.Proxy.ReadOnlyStream
{
    private readonly long _started = System.Diagnostics.Stopwatch.GetTimestamp();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var left = total is { } limit ? limit - System.Diagnostics.Stopwatch.GetElapsedTime(_started) : TimeSpan.MaxValue;
        if (left <= TimeSpan.Zero)
        {
            throw new UploadTooLongException(total!.Value);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(left < idle ? left : idle);
        try
        {
            return await inner.ReadAsync(buffer, deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw left < idle ? new UploadTooLongException(total!.Value) : new TimeoutException($"Nothing arrived for {idle}.");
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // Kestrel forbids synchronous reads of a request body; so does this.
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}

/// <summary>The body took longer than its <c>total</c> bound of <see cref="IdleTimeoutStream"/>.</summary>
internal sealed class UploadTooLongException(TimeSpan total) : TimeoutException($"The upload took longer than {total}.")
{
    public TimeSpan Total { get; } = total;
}
