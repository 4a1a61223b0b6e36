using System.Buffers;
using System.Net.Sockets;
using WsWeb.Core;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Listener;

namespace WsWeb.Proxy.WebSockets;

// A whole message: recorded, run through the addons, then written out (its original fragments when unmodified).
internal sealed partial class WebSocketRelay
{
    private async ValueTask HandleMessageAsync(RelayLeg from, RelayLeg to, MessageAssembler state, CancellationToken cancellationToken)
    {
        var content = state.Compressed ? Inflate(from, state) : state.TakeContent();
        var message = new WebSocketMessage(state.MessageType, from.IsClient, content, Timestamps.Now(_time));
        if (content.Length >= ContentPool.MinLength)
        {
            // Pinned until written: retention may evict the message meanwhile, but its array is only
            // reused once nobody (an addon, the API, the hub) has read it and this write is done.
            message.UsePool(ContentPool.Shared);
        }

        var unpinLater = false;
        try
        {
            unpinLater = await ForwardAsync(to, message, state.Fragments, cancellationToken);
        }
        finally
        {
            if (!unpinLater)
            {
                message.Unpin();
            }
        }
    }

    /// <returns>True when a large write still uses the message and unpins it when done.</returns>
    private async ValueTask<bool> ForwardAsync(RelayLeg to, WebSocketMessage message, IReadOnlyList<Fragment> fragments, CancellationToken cancellationToken)
    {
        await to.Sequence.WaitAsync(cancellationToken);
        try
        {
            return await ForwardInSequenceAsync(to, message, fragments, cancellationToken);
        }
        finally
        {
            to.Sequence.Release();
        }
    }

    private async ValueTask<bool> ForwardInSequenceAsync(RelayLeg to, WebSocketMessage message, IReadOnlyList<Fragment> fragments, CancellationToken cancellationToken)
    {
        _store.AddMessage(_flow, message);
        var hooks = _addons.WebSocketMessageAsync(_flow, message, cancellationToken);
        if (!hooks.IsCompleted)
        {
            // A hook holds this message (intercept): what earlier messages wrote is waiting for the pump's
            // batched flush, and must not wait for someone to decide on this one.
            var from = message.FromClient ? _client : _server;
            from.HoldingMessage = true;
            try
            {
                await FlushAsync(to, cancellationToken);
                await hooks;
            }
            finally
            {
                from.HoldingMessage = false;
            }
        }
        else
        {
            await hooks;
        }

        if (message.Dropped || message.IsModified)
        {
            _store.MessageChanged(_flow, message);
        }

        if (message.Dropped)
        {
            return false;
        }

        if (to.CloseSent)
        {
            // Released after the peer was sent a close (a hook held it meanwhile): it can no longer be delivered.
            MarkUndelivered(message);
            return false;
        }

        var content = message.PinnedContent;

        // Original frame boundaries only fit content of the original length (SetState can change it unmarked).
        var keepFragments = !message.IsModified && fragments.Count > 1 && FragmentsCover(fragments, content.Length);
        if (content.Length >= DirectReadThreshold && to.Deflater is null && to.Transport is not null && !keepFragments)
        {
            // Overlap: while this message goes out, the pump reads the next one. At most one large write
            // is in flight per leg (backpressure), and the write lock keeps frames in order behind it.
            await to.AwaitPendingWriteAsync();
            to.PendingWrite = WriteLargeAsync(to, message, cancellationToken);
            return true;
        }

        // A close may have gone out (the API's) while this waited for the write lock: then the message did not.
        bool written;
        if (!keepFragments || to.Deflater is not null)
        {
            // Compressed legs re-compress into one frame: the two legs' compression contexts differ anyway.
            written = await WriteAsync(to, message, static (leg, m) => WriteMessage(leg, m), flush: false, ignoreClosed: false, cancellationToken);
        }
        else
        {
            // Unmodified: keep the original frame boundaries on the way out.
            written = await WriteFragmentsAsync(to, message, fragments, cancellationToken);
        }

        if (!written)
        {
            MarkUndelivered(message);
        }

        return false;
    }

    /// <summary>
    /// Writes an unmodified message with its original frame boundaries. The pipe buffers everything written until
    /// a flush, so a message of many frames (up to <see cref="MessageAssembler.MaxFragments"/>, with their headers)
    /// is flushed as it goes rather than held whole in the pipe beside its recorded copy.
    /// </summary>
    /// <returns>False when nothing was written because the peer was already sent a close.</returns>
    private static async ValueTask<bool> WriteFragmentsAsync(RelayLeg to, WebSocketMessage message, IReadOnlyList<Fragment> fragments, CancellationToken cancellationToken)
    {
        await to.WriteLock.WaitAsync(cancellationToken);
        try
        {
            if (to.CloseSent)
            {
                return false;
            }

            var content = message.PinnedContent;
            var offset = 0;
            var unflushed = 0L;
            for (var i = 0; i < fragments.Count; i++)
            {
                var length = (int)fragments[i].Length;
                var last = i == fragments.Count - 1;
                WriteFrame(to, last, false, i == 0 ? message.Type : Opcode.Continuation, content.AsSpan(offset, length));
                offset += length;
                unflushed += FrameCodec.HeaderLength(length, masked: !to.IsClient) + length;
                if (unflushed >= FragmentFlushThreshold && !last)
                {
                    // The rest of the message waits for the peer to take this part: backpressure, not buffering.
                    await to.Output.FlushAsync(cancellationToken);
                    unflushed = 0;
                }
            }

            return true;
        }
        catch (Exception ex) when (IsConnectionLoss(ex))
        {
            throw new PeerGoneException(to, ex);
        }
        finally
        {
            to.WriteLock.Release();
        }
    }

    /// <summary>The message was recorded but could not go out (its peer was sent a close first, or the flow ended): the flow must not show it as delivered.</summary>
    private void MarkUndelivered(WebSocketMessage message)
    {
        message.Drop();
        _store.MessageChanged(_flow, message);
    }

    private static bool FragmentsCover(IReadOnlyList<Fragment> fragments, long length)
    {
        long total = 0;
        foreach (var fragment in fragments)
        {
            total += fragment.Length;
        }

        return total == length;
    }

    private byte[] Inflate(RelayLeg from, MessageAssembler state)
    {
        var output = from.InflateBuffer;
        output.ResetWrittenCount();
        try
        {
            from.Inflater!.Inflate(state.PayloadMemory, output);
        }
        catch (DecompressedMessageTooLargeException)
        {
            throw new WebSocketProtocolException(WebSocketCloseCodes.MessageTooBig, $"Decompressed message is larger than the maximum of {_settings.MaxMessageSize} bytes.");
        }
        catch (InvalidDataException ex)
        {
            throw new WebSocketProtocolException(WebSocketCloseCodes.InvalidPayload, $"Compressed message is not valid deflate data: {ex.Message}");
        }
        finally
        {
            state.ReleasePayload();
        }

        if (state.MessageType == Opcode.Text && !System.Text.Unicode.Utf8.IsValid(output.WrittenSpan))
        {
            throw new WebSocketProtocolException(WebSocketCloseCodes.InvalidPayload, "Text message is not valid UTF-8.");
        }

        var content = ContentPool.Shared.Rent(output.WrittenCount);
        output.WrittenSpan.CopyTo(content);
        from.ReleaseLargeInflateBuffer();
        return content;
    }

    /// <summary>
    /// Writes a large uncompressed message as one frame straight to the leg's stream, after flushing the
    /// pipe: the header goes with the first payload bytes, the rest skips the pipe's buffers (masked in
    /// pooled chunks toward the server). Unpins <paramref name="message"/> when done, whatever happens.
    /// </summary>
    private async Task WriteLargeAsync(RelayLeg to, WebSocketMessage message, CancellationToken cancellationToken)
    {
        try
        {
            if (!await WriteLargeLockedAsync(to, message.Type, message.PinnedContent, cancellationToken))
            {
                MarkUndelivered(message);
            }
        }
        finally
        {
            message.Unpin();
        }
    }

    /// <returns>False when the peer was sent a close first, so the message did not go out.</returns>
    private static async ValueTask<bool> WriteLargeLockedAsync(RelayLeg to, Opcode type, byte[] payload, CancellationToken cancellationToken)
    {
        await to.WriteLock.WaitAsync(cancellationToken);
        try
        {
            if (to.CloseSent)
            {
                return false;
            }

            // Whatever earlier frames left in the pipe goes first.
            await to.Output.FlushAsync(cancellationToken);

            // The header travels with the start of the payload: a header on its own would be a tiny TCP
            // segment of its own (NoDelay), and one more wake-up for the peer, per message.
            var mask = MaskFor(to);
            var stream = to.Transport!;
            var chunk = ArrayPool<byte>.Shared.Rent(mask.HasValue ? MaskedChunk : UnmaskedFirstChunk);
            try
            {
                var filled = FrameCodec.WriteHeader(chunk, true, false, type, payload.Length, mask);
                var offset = 0;
                while (offset < payload.Length)
                {
                    var count = Math.Min(chunk.Length - filled, payload.Length - offset);
                    payload.AsSpan(offset, count).CopyTo(chunk.AsSpan(filled));
                    if (mask is { } key)
                    {
                        FrameCodec.ApplyMask(chunk.AsSpan(filled, count), key, offset);
                    }

                    await stream.WriteAsync(chunk.AsMemory(0, filled + count), cancellationToken);
                    offset += count;
                    filled = 0;
                    if (!mask.HasValue)
                    {
                        // Unmasked: the rest goes out straight from the message's array.
                        await stream.WriteAsync(payload.AsMemory(offset), cancellationToken);
                        break;
                    }
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(chunk);
            }

            await stream.FlushAsync(cancellationToken);
            return true;
        }
        catch (Exception ex) when (IsConnectionLoss(ex))
        {
            throw new PeerGoneException(to, ex);
        }
        finally
        {
            to.WriteLock.Release();
        }
    }

    /// <summary>
    /// Awaits work of the pump reading <paramref name="from"/> that waits on something else: the other peer taking
    /// what is written to it (TCP backpressure), a hook holding a message (intercept). Meanwhile nothing reads
    /// <paramref name="from"/>, so its peer leaving would go unnoticed, its flow open and both sockets held for as
    /// long as the wait lasts. Its socket is watched instead. Once the peer has left, the wait still gets
    /// <see cref="RelaySettings.CloseTimeout"/> to finish, so what it sent before leaving (a message, its close)
    /// still goes out and is recorded as it was; after that the relay ends with 1006.
    /// </summary>
    private ValueTask<T> WatchingAsync<T>(RelayLeg from, ValueTask<T> pending) =>
        pending.IsCompleted || from.Socket is not { } socket || from.CloseReceived ? pending : WatchingSlowAsync(from, socket, pending.AsTask());

    private ValueTask WatchingAsync(RelayLeg from, ValueTask pending) =>
        pending.IsCompleted || from.Socket is not { } socket || from.CloseReceived ? pending : new ValueTask(WatchUntilDoneAsync(from, socket, pending.AsTask()));

    private async ValueTask<T> WatchingSlowAsync<T>(RelayLeg from, Socket socket, Task<T> pending)
    {
        await WatchUntilDoneAsync(from, socket, pending);
        return await pending;
    }

    private async Task WatchUntilDoneAsync(RelayLeg from, Socket socket, Task pending)
    {
        using var watching = new CancellationTokenSource();
        var left = PeerWatch.LeftAsync(socket, _time, watching.Token);
        if (await Task.WhenAny(pending, left) == left && await left)
        {
            await AfterPeerLeftAsync(from, pending);
        }

        await watching.CancelAsync();
        await pending;
    }

    /// <summary>
    /// <paramref name="from"/> left while <paramref name="pending"/> waited: it gets the close timeout to finish, so
    /// what the peer sent before leaving still goes out; after that the relay ends with 1006.
    /// </summary>
    private async Task AfterPeerLeftAsync(RelayLeg from, Task pending)
    {
        using var waiting = new CancellationTokenSource();
        if (await Task.WhenAny(pending, Task.Delay(_settings.CloseTimeout, _time, waiting.Token)) != pending)
        {
            if (_ws.TryClose(from.IsClient, WebSocketCloseCodes.AbnormalClosure, null, Timestamps.Now(_time)))
            {
                LogPeerGone(_flow.Id, from.Name, "closed the TCP connection while the proxy could not pass on what it had sent");
            }

            _client.Abort();
            _server.Abort();
            _stop.Cancel();
        }

        await waiting.CancelAsync();
    }

    /// <summary>Writes a whole message as one frame, compressed when the leg negotiated permessage-deflate.</summary>
    private static void WriteMessage(RelayLeg to, WebSocketMessage message)
    {
        if (to.Deflater is { } deflater)
        {
            var compressed = to.CompressBuffer;
            compressed.ResetWrittenCount();
            deflater.Compress(message.PinnedContent, compressed);
            WriteFrame(to, true, true, message.Type, compressed.WrittenSpan);
            to.ReleaseLargeCompressBuffer();
            return;
        }

        WriteFrame(to, true, false, message.Type, message.PinnedContent);
    }
}
