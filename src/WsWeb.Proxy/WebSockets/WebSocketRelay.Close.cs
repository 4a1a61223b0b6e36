using WsWeb.Core;
using WsWeb.Core.WebSockets;

namespace WsWeb.Proxy.WebSockets;

// Closing one side for a protocol error, and sending a close that a peer may never read.
internal sealed partial class WebSocketRelay
{
    private async Task FailAsync(RelayLeg offender, RelayLeg other, int code, string reason)
    {
        // A message over the size limit breaks no rule of RFC 6455, only this proxy's limit: say which it was.
        var tooBig = code == WebSocketCloseCodes.MessageTooBig;
        _flow.Error ??= tooBig ? $"{offender.Name} sent a message too big to relay: {reason}" : $"{offender.Name} violated the WebSocket protocol: {reason}";
        _ws.TryClose(offender.IsClient, code, reason, Timestamps.Now(_time), byProxy: true);
        LogProtocolError(_flow.Id, offender.Name, code, reason);

        // Both at once, each with its own timeout: an offender that stopped reading leaves the pump writing to it
        // stuck holding its write lock, and waiting for that first would leave the innocent peer without a close.
        // The error code belongs to the offender only; the innocent peer just loses its counterpart.
        await Task.WhenAll(
            SendCloseToOffenderAsync(offender, code, reason),
            SendCloseWithinTimeoutAsync(other, WebSocketCloseCodes.GoingAway, tooBig ? $"the {offender.Name} sent a message too big to relay" : $"the {offender.Name} broke the WebSocket protocol", _settings.CloseTimeout));
    }

    /// <summary>
    /// Sends the offender its close, and drops its TCP when it does not take the close in a short while: it is not
    /// reading (its receive window is full). Failing a connection does not wait for the peer (RFC 6455 §7.1.7: nothing
    /// it sends afterwards, its close included, is processed), and a proxy speaking for a misbehaving peer must not
    /// hold that peer's socket, and the pump stuck writing to it, for the whole close timeout. An offender that reads
    /// has its close frame by then; its TCP then ends with the relay, after the other peer's close handshake.
    /// </summary>
    private async Task SendCloseToOffenderAsync(RelayLeg offender, int code, string reason)
    {
        await SendCloseWithinTimeoutAsync(offender, code, reason, _settings.OffenderCloseTimeout);
        if (offender.CloseWriteFailed)
        {
            LogOffenderDropped(_flow.Id, offender.Name);

            // A write stuck on it fails now. The other peer has its 1001; the relay then ends without waiting for its
            // reply when that write was the pump reading it (dropping the client also cancels the relay, whose token is
            // the client's RequestAborted), as it did before, only seconds sooner.
            offender.Abort();
        }
    }

    /// <returns>
    /// Whether the close went out; <see cref="CloseDelivery.Written"/> too when the peer had been sent a close already
    /// (by whoever sent that one, who also answers for it).
    /// </returns>
    private async Task<CloseDelivery> SendCloseWithinTimeoutAsync(RelayLeg to, int code, string? reason, TimeSpan within)
    {
        if (!to.TryMarkCloseSent())
        {
            return CloseDelivery.Written;
        }

        using var timeout = new CancellationTokenSource(within, _time);
        var payload = new byte[FrameCodec.MaxControlPayload];
        var length = FrameCodec.WriteClosePayload(payload, code, reason);
        try
        {
            await WriteAsync(to, payload[..length], static (leg, p) => WriteFrame(leg, true, false, Opcode.Close, p), flush: true, ignoreClosed: true, timeout.Token);
            return CloseDelivery.Written;
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException or PeerGoneException || IsConnectionLoss(ex))
        {
            // The peer is gone or did not take the close in time; the close is recorded all the same.
            to.MarkCloseWriteFailed();
            return ex is OperationCanceledException && timeout.IsCancellationRequested ? CloseDelivery.TimedOut : CloseDelivery.PeerGone;
        }
    }
}
