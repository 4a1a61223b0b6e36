using System.Buffers;
using System.IO.Pipelines;
using WsWeb.Core;
using WsWeb.Core.WebSockets;

namespace WsWeb.Proxy.WebSockets;

// Reading one direction: frames in, control frames passed on (also while a message is held), messages handed to Forward.
internal sealed partial class WebSocketRelay
{
    private async Task<PumpEnd> PumpAsync(RelayLeg from, RelayLeg to, CancellationToken cancellationToken)
    {
        var reader = from.Input;
        var state = new MessageAssembler(from.IsClient, _settings.MaxMessageSize) { AllowCompression = from.Inflater is not null };
        var pendingFlush = false;
        Task<ReadResult>? handedOver = null;
        try
        {
            while (true)
            {
                ReadResult result;
                if (handedOver is not null)
                {
                    // A read begun while a message was held: it is this pump's next read.
                    result = await handedOver;
                    handedOver = null;
                }
                else if (!reader.TryRead(out result))
                {
                    // Flush what earlier messages wrote only when no more input is waiting: one write per batch.
                    if (pendingFlush)
                    {
                        await WatchingAsync(from, FlushAsync(to, cancellationToken));
                        pendingFlush = false;
                    }

                    result = await reader.ReadAsync(cancellationToken);
                }

                if (result.IsCanceled)
                {
                    return PumpEnd.Cancelled;
                }

                var (consumed, closed, handled, held) = await WatchingAsync(from, ProcessAsync(from, to, state, result.Buffer, cancellationToken));
                pendingFlush |= handled;
                if (held is not null)
                {
                    // What follows the held message stays unexamined, so the pass below and the pump see it first.
                    reader.AdvanceTo(consumed);
                    handedOver = await PassControlWhileHeldAsync(from, to, reader, held, cancellationToken);
                    continue;
                }

                reader.AdvanceTo(consumed, result.Buffer.End);
                if (closed)
                {
                    return PumpEnd.Closed;
                }

                if (result.IsCompleted)
                {
                    return OnPeerGone(from, "closed the TCP connection without a close frame");
                }

                if (from.Transport is { } stream && state.PendingPayload >= DirectReadThreshold && result.Buffer.Slice(consumed).IsEmpty)
                {
                    // What came before goes out first: a large payload can take long to arrive (a slow upload),
                    // and the message or ping ahead of it must not wait for its last byte.
                    if (pendingFlush)
                    {
                        await WatchingAsync(from, FlushAsync(to, cancellationToken));
                        pendingFlush = false;
                    }

                    // A large payload: read it from the socket straight into the message's array instead
                    // of through the pipe's buffers (safe: the pipe holds no unconsumed bytes now).
                    if (!await ReadPayloadDirectAsync(stream, state, cancellationToken))
                    {
                        return OnPeerGone(from, "closed the TCP connection in the middle of a frame");
                    }

                    (_, closed, handled, held) = await WatchingAsync(from, ProcessAsync(from, to, state, ReadOnlySequence<byte>.Empty, cancellationToken));
                    pendingFlush |= handled;
                    if (held is not null)
                    {
                        handedOver = await PassControlWhileHeldAsync(from, to, reader, held, cancellationToken);
                    }
                    else if (closed)
                    {
                        return PumpEnd.Closed;
                    }
                }
            }
        }
        catch (WebSocketProtocolException ex)
        {
            await FailAsync(from, to, ex.CloseCode, ex.Message);
            return PumpEnd.ProtocolError;
        }
        catch (OperationCanceledException)
        {
            return PumpEnd.Cancelled;
        }
        catch (PeerGoneException ex)
        {
            // Writing to the other peer failed: that peer is the one that went away.
            return OnPeerGone(ex.Leg, ex.Message);
        }
        catch (Exception ex) when (IsConnectionLoss(ex) || ex is InvalidOperationException)
        {
            return OnPeerGone(from, ex.Message);
        }
        catch (Exception ex)
        {
            // A bug must end this connection cleanly (close recorded, hooks told), not leave it hanging.
            LogUnexpected(_flow.Id, from.Name, ex);
            _flow.Error ??= $"Relaying from the {from.Name} failed: {ex.Message}";
            _ws.TryClose(from.IsClient, WebSocketCloseCodes.InternalError, "proxy error", Timestamps.Now(_time), byProxy: true);
            return PumpEnd.Faulted;
        }
        finally
        {
            state.Dispose();
        }
    }

    /// <summary>Feeds <paramref name="buffer"/> to the assembler and handles every frame and message it completes.</summary>
    /// <returns>
    /// Where the assembler stopped, whether the peer closed, whether anything was written, and the handling of a
    /// message a hook holds (intercept), which stops the feeding until it ends.
    /// </returns>
    private async ValueTask<(SequencePosition Consumed, bool Closed, bool Handled, Task? Held)> ProcessAsync(
        RelayLeg from, RelayLeg to, MessageAssembler state, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
    {
        var handled = false;
        while (true)
        {
            var step = state.Read(ref buffer);
            if (step == AssemblerStep.NeedMoreData)
            {
                return (buffer.Start, false, handled, null);
            }

            handled = true;
            if (step == AssemblerStep.Control)
            {
                if (await HandleControlAsync(from, to, state, cancellationToken))
                {
                    return (buffer.Start, true, handled, null);
                }
            }
            else
            {
                var handling = HandleMessageAsync(from, to, state, cancellationToken);
                if (!handling.IsCompleted && from.HoldingMessage)
                {
                    return (buffer.Start, false, handled, handling.AsTask());
                }

                await handling;
            }
        }
    }

    private static async ValueTask<bool> ReadPayloadDirectAsync(Stream stream, MessageAssembler state, CancellationToken cancellationToken)
    {
        while (state.PendingPayload > 0)
        {
            var read = await stream.ReadAsync(state.PayloadDestination(DirectReadChunk), cancellationToken);
            if (read == 0)
            {
                return false;
            }

            state.CommitPayload(read);
        }

        return true;
    }

    private PumpEnd OnPeerGone(RelayLeg from, string why)
    {
        if (from.CloseReceived)
        {
            return PumpEnd.Closed;
        }

        if (_ws.TryClose(from.IsClient, WebSocketCloseCodes.AbnormalClosure, null, Timestamps.Now(_time)))
        {
            LogPeerGone(_flow.Id, from.Name, why);
        }

        return PumpEnd.Gone;
    }

    /// <returns>True when the frame was a close and this direction is done.</returns>
    private async ValueTask<bool> HandleControlAsync(RelayLeg from, RelayLeg to, MessageAssembler state, CancellationToken cancellationToken)
    {
        var opcode = state.ControlOpcode;
        if (opcode == Opcode.Close)
        {
            var (code, reason) = FrameCodec.ReadClosePayload(state.ControlPayload);
            from.MarkCloseReceived();
            _ws.TryClose(from.IsClient, code, reason, Timestamps.Now(_time));

            // A large message still going out came before this close and must not be cut off by it.
            await to.AwaitPendingWriteAsync();
            if (to.TryMarkCloseSent())
            {
                try
                {
                    await WriteAsync(to, state.ControlPayload.ToArray(), static (leg, payload) => WriteFrame(leg, true, false, Opcode.Close, payload), flush: true, ignoreClosed: true, cancellationToken);
                }
                catch
                {
                    to.MarkCloseWriteFailed();
                    throw;
                }
            }

            return true;
        }

        await ForwardControlAsync(from, to, opcode, state.ControlPayload.ToArray(), flush: false, cancellationToken);
        return false;
    }

    /// <summary>Counts a ping or pong and passes it on, unless the other peer was sent a close.</summary>
    private async ValueTask ForwardControlAsync(RelayLeg from, RelayLeg to, Opcode opcode, byte[] payload, bool flush, CancellationToken cancellationToken)
    {
        _ws.CountControl(opcode, from.IsClient);
        if (!to.CloseSent)
        {
            await WriteAsync(to, (Opcode: opcode, Payload: payload), static (leg, f) => WriteFrame(leg, true, false, f.Opcode, f.Payload), flush, ignoreClosed: false, cancellationToken);
        }
    }

    /// <summary>
    /// While a hook holds a message <paramref name="from"/> sent (intercept), passes on the pings and pongs that peer
    /// sends after it. A client library answering its server's keepalive pings would otherwise have its pongs held
    /// behind the message, and the server drop the connection at its ping timeout (RFC 6455 §5.5 lets control frames
    /// go between data frames). Reading stops at the first frame of any other kind (data, a close, or one that is not
    /// valid), which waits for the held message to go first as before; the peer's socket is watched meanwhile.
    /// </summary>
    /// <returns>A read still under way when the hold ended, which is the pump's next read.</returns>
    private async Task<Task<ReadResult>?> PassControlWhileHeldAsync(RelayLeg from, RelayLeg to, PipeReader reader, Task held, CancellationToken cancellationToken)
    {
        try
        {
            while (!held.IsCompleted)
            {
                var reading = reader.ReadAsync(cancellationToken);
                if (!reading.IsCompleted)
                {
                    var pending = reading.AsTask();
                    if (await Task.WhenAny(held, pending) == held)
                    {
                        try
                        {
                            await FinishHoldAsync(to, held, cancellationToken);
                        }
                        catch
                        {
                            // The pump ends on this; the read it leaves behind ends with the relay's pipes.
                            _ = pending.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                            throw;
                        }

                        return pending;
                    }

                    reading = new ValueTask<ReadResult>(pending);
                }

                var result = await reading;
                var buffer = result.Buffer;
                var stop = result.IsCanceled;
                while (!stop && TryTakeControl(from.IsClient, ref buffer, out var opcode, out var payload, out stop))
                {
                    await ForwardControlAsync(from, to, opcode, payload, flush: true, cancellationToken);
                }

                // A frame that is not passed on is left unexamined, for the pump to read once the hold ends.
                reader.AdvanceTo(buffer.Start, stop ? buffer.Start : result.Buffer.End);
                if (result.IsCompleted)
                {
                    // The peer left; the pump reports it once the hold ends.
                    await AfterPeerLeftAsync(from, held);
                    break;
                }

                if (stop)
                {
                    break;
                }
            }
        }
        catch
        {
            // The held message's handling still uses the assembler's buffers, so the pump may end only after it
            // (the relay's ending cancels the hooks, which ends a hold).
            await held.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            throw;
        }

        await WatchingAsync(from, new ValueTask(held));
        await FinishHoldAsync(to, held, cancellationToken);
        return null;
    }

    /// <summary>The released message may sit in the pipe unflushed, and the next read may not come soon.</summary>
    private static async Task FinishHoldAsync(RelayLeg to, Task held, CancellationToken cancellationToken)
    {
        await held;
        if (!to.CloseSent)
        {
            await FlushAsync(to, cancellationToken);
        }
    }

    /// <summary>Takes a whole, valid ping or pong from the start of <paramref name="buffer"/>, unmasked.</summary>
    /// <param name="stop">Set when the next frame is of another kind, or not valid: nothing more may be taken.</param>
    /// <returns>False when nothing was taken: <paramref name="stop"/>, or more bytes are needed.</returns>
    private static bool TryTakeControl(bool fromClient, ref ReadOnlySequence<byte> buffer, out Opcode opcode, out byte[] payload, out bool stop)
    {
        (opcode, payload, stop) = (default, [], false);
        FrameHeader header;
        try
        {
            if (!FrameCodec.TryReadHeader(buffer, out header))
            {
                return false;
            }
        }
        catch (WebSocketProtocolException)
        {
            // The pump reports it, in its turn.
            stop = true;
            return false;
        }

        if (header.Opcode is not (Opcode.Ping or Opcode.Pong) || MessageAssembler.FrameProblem(header, fromClient, allowCompression: false) is not null)
        {
            stop = true;
            return false;
        }

        if (buffer.Length < header.HeaderLength + header.PayloadLength)
        {
            return false;
        }

        payload = buffer.Slice(header.HeaderLength, header.PayloadLength).ToArray();
        if (header.Masked)
        {
            FrameCodec.ApplyMask(payload, header.MaskKey, 0);
        }

        buffer = buffer.Slice(header.HeaderLength + header.PayloadLength);
        opcode = header.Opcode;
        return true;
    }
}
