namespace WsWeb.Api;

/// <summary>
/// A request body that gives up when nothing arrives for <paramref name="idle"/>: each read that waits longer throws
/// <see cref="TimeoutException"/>. A deadline per read, not a rate: however much came before, a pause this long means
/// the sender stopped or is gone.
/// </summary>
internal sealed class IdleTimeoutStream(Stream inner, TimeSpan idle) : WsWeb.Proxy.ReadOnlyStream
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(idle);
        try
        {
            return await inner.ReadAsync(buffer, deadline.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"Nothing arrived for {idle}.");
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    // Kestrel forbids synchronous reads of a request body; so does this.
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
