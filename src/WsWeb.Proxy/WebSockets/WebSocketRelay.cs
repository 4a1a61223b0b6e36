using System.Buffers;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using WsWeb.Core;
using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Addons;
using WsWeb.Proxy.Listener;

namespace WsWeb.Proxy.WebSockets;

/// <summary>
/// Relays one WebSocket connection after the handshake: one pump per direction reads frames with
/// <see cref="FrameCodec"/>, reassembles messages, records them, runs the addons and forwards them.
/// </summary>
/// <remarks>
/// The proxy terminates both legs, as mitmproxy does: pings and pongs are forwarded, never answered;
/// unmodified messages keep their frame boundaries; a protocol error closes both legs with the RFC code.
/// Injections go through a queue per direction so they are forwarded in the order they were accepted.
/// </remarks>
internal sealed partial class WebSocketRelay
{
    /// <summary>Payloads at least this large bypass the pipe on the way in, and on the way out.</summary>
    private const int DirectReadThreshold = 64 * 1024;
    private const int DirectReadChunk = 1024 * 1024;

    /// <summary>Masking needs a copy anyway: large payloads to the server go out masked through a buffer this big.</summary>
    private const int MaskedChunk = 256 * 1024;

    /// <summary>Unmasked large payloads: the header and this much of the payload go out in one write, the rest uncopied.</summary>
    private const int UnmaskedFirstChunk = 16 * 1024;

    /// <summary>A fragmented message going out is flushed whenever this much of it waits in the pipe.</summary>
    private const int FragmentFlushThreshold = 64 * 1024;

    private readonly HttpFlow _flow;
    private readonly WebSocketData _ws;
    private readonly RelayLeg _client;
    private readonly RelayLeg _server;
    private readonly FlowStore _store;
    private readonly AddonPipeline _addons;
    private readonly TimeProvider _time;
    private readonly RelaySettings _settings;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Channel<Injection> _toClient = Channel.CreateUnbounded<Injection>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Channel<Injection> _toServer = Channel.CreateUnbounded<Injection>(new UnboundedChannelOptions { SingleReader = true });

    /// <summary>Content bytes injected toward each peer and not yet taken off its queue (see <see cref="MaxQueuedInjectionBytes"/>).</summary>
    private long _queuedToClient;
    private long _queuedToServer;

    /// <summary>
    /// How much injected content may wait to go out toward one peer: twice the maximum message size. A peer that stops
    /// reading leaves what is injected toward it queued, and a script injecting in a loop (with ?wait=0, or from an addon)
    /// would otherwise queue without end outside the store's memory budget.
    /// </summary>
    private long MaxQueuedInjectionBytes => _settings.MaxMessageSize * 2;
    private int _finished;

    public WebSocketRelay(
        HttpFlow flow,
        RelayLeg client,
        RelayLeg server,
        FlowStore store,
        AddonPipeline addons,
        TimeProvider time,
        RelaySettings settings,
        ILogger logger)
    {
        _flow = flow;
        _ws = flow.WebSocket ?? throw new ArgumentException("The flow has no WebSocket data.", nameof(flow));
        _client = client;
        _server = server;
        _store = store;
        _addons = addons;
        _time = time;
        _settings = settings;
        _logger = logger;
    }

    public HttpFlow Flow => _flow;

    public bool IsRunning => Volatile.Read(ref _finished) == 0;

    /// <summary>Relays until both peers have closed, one has gone, or <paramref name="cancellationToken"/> fires.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        var token = linked.Token;
        _flow.IsLive = true;
        await _addons.WebSocketStartAsync(_flow, token);

        var injectToClient = RunInjectionsAsync(_toClient.Reader, _client, token);
        var injectToServer = RunInjectionsAsync(_toServer.Reader, _server, token);
        var upstream = PumpAsync(_client, _server, token);
        var downstream = PumpAsync(_server, _client, token);

        var first = await Task.WhenAny(upstream, downstream);
        var other = first == upstream ? downstream : upstream;
        // The pump still running reads the other peer; if that peer was sent a close, it owes us a reply.
        // A close that never went out (the peer did not take it in time) gets none: no point waiting for it.
        var otherPeer = first == upstream ? _server : _client;
        if (otherPeer.CloseSent && !otherPeer.CloseWriteFailed)
        {
            // The other peer was sent a close: give it time to answer before dropping the connection.
            await Task.WhenAny(other, Task.Delay(_settings.CloseTimeout, _time, CancellationToken.None));
        }

        // The token is the client's RequestAborted: when it fired, Kestrel saw the client connection go.
        await FinishAsync(first.Result, other, injectToClient, injectToServer, clientAborted: cancellationToken.IsCancellationRequested);
    }

    /// <summary>Queues an injected message (see <see cref="IWebSocketControl.Inject"/>).</summary>
    public Injection Inject(bool toClient, ReadOnlyMemory<byte> content, bool isText, bool awaitCompletion)
    {
        var message = new WebSocketMessage(
            isText ? Opcode.Text : Opcode.Binary,
            fromClient: !toClient,
            content.ToArray(),
            Timestamps.Now(_time),
            injected: true);
        if (isText && !System.Text.Unicode.Utf8.IsValid(message.Content))
        {
            throw new ArgumentException("Injected text must be valid UTF-8.", nameof(content));
        }

        if (content.Length > _settings.MaxMessageSize)
        {
            throw new ArgumentException($"Injected message is larger than the maximum message size ({_settings.MaxMessageSize} bytes).", nameof(content));
        }

        var injection = new Injection(message, awaitCompletion ? new TaskCompletionSource<WebSocketMessage>(TaskCreationOptions.RunContinuationsAsynchronously) : null);
        var target = toClient ? _client : _server;
        if (IsRunning && target.CloseSent)
        {
            throw new InvalidOperationException($"Flow {_flow.Id}: the {target.Name} was already sent a close; nothing more can be sent to it.");
        }

        ref var queued = ref toClient ? ref _queuedToClient : ref _queuedToServer;
        if (Interlocked.Add(ref queued, content.Length) > MaxQueuedInjectionBytes)
        {
            var waiting = Interlocked.Add(ref queued, -content.Length);
            throw new InjectionQueueFullException($"Flow {_flow.Id}: {waiting} bytes injected toward the {target.Name} are still waiting to go out (it is not reading, or a message ahead of them is held), "
                + $"and at most {MaxQueuedInjectionBytes} may wait; nothing was queued. Inject again once they went out.");
        }

        if (!IsRunning || !(toClient ? _toClient : _toServer).Writer.TryWrite(injection))
        {
            Interlocked.Add(ref queued, -content.Length);
            throw new InvalidOperationException($"Flow {_flow.Id} is closed; nothing can be injected.");
        }

        return injection;
    }

    /// <summary>True once the chosen peer was sent a close: nothing more can be delivered to it.</summary>
    public bool CloseSentTo(bool toClient) => (toClient ? _client : _server).CloseSent;

    /// <summary>
    /// Sends a close frame to the chosen peer(s); the other direction follows the peer's reply. A peer that does not
    /// take its close within <see cref="RelaySettings.CloseTimeout"/> (it stopped reading) has its TCP connection
    /// dropped, which ends the flow, and this throws <see cref="InvalidOperationException"/> saying so.
    /// </summary>
    /// <remarks>
    /// <paramref name="cancellationToken"/> only stops the caller waiting: the close goes on to its end without it.
    /// A close abandoned half way would be claimed (nothing more may follow it) but never written, leaving the
    /// connection open with no way to end it but a kill.
    /// </remarks>
    public async Task CloseAsync(CloseTarget target, int code, string? reason, CancellationToken cancellationToken)
    {
        if (!IsRunning)
        {
            throw new InvalidOperationException($"Flow {_flow.Id} is closed.");
        }

        // Recorded before it goes out, so the peer's reply is recorded as the answer and not as a close of its own.
        _ws.TryClose(closedByClient: target == CloseTarget.Server, code, reason, Timestamps.Now(_time), byProxy: true);

        if (await CloseWithinTimeoutAsync(target, code, reason).WaitAsync(cancellationToken) is { } undelivered)
        {
            throw new InvalidOperationException($"Flow {_flow.Id}: {undelivered}");
        }
    }

    /// <returns>Why the close did not reach a peer it was for, or null when it reached every one of them.</returns>
    private async Task<string?> CloseWithinTimeoutAsync(CloseTarget target, int code, string? reason)
    {
        // Both at once: a peer that stopped reading must not keep the other from hearing of the close.
        var outcomes = await Task.WhenAll(
            target != CloseTarget.Server ? SendCloseWithinTimeoutAsync(_client, code, reason, _settings.CloseTimeout) : Task.FromResult(CloseDelivery.Written),
            target != CloseTarget.Client ? SendCloseWithinTimeoutAsync(_server, code, reason, _settings.CloseTimeout) : Task.FromResult(CloseDelivery.Written));
        var failures = new List<string>(2);
        Report(_client, outcomes[0]);
        Report(_server, outcomes[1]);
        if (failures.Count == 0)
        {
            return null;
        }

        // The flow keeps the close the proxy started (its code, its side), as after a protocol error; the error says
        // it did not go through. Set before the drop, so the flow has it when it ends.
        var undelivered = string.Join(" ", failures);
        _flow.Error ??= undelivered;

        // Failing the connection (RFC 6455 §7.1.7) is all that is left: its TCP goes, and the write stuck on it (the
        // one the close waited behind) fails with it; the relay ends, as when a peer leaves.
        if (outcomes[0] != CloseDelivery.Written)
        {
            _client.Abort();
        }

        if (outcomes[1] != CloseDelivery.Written)
        {
            _server.Abort();
        }

        return undelivered;

        void Report(RelayLeg leg, CloseDelivery outcome)
        {
            // A peer that had sent its own close and then left was owed this close only as a reply: nothing is lost.
            if (outcome == CloseDelivery.Written || (outcome == CloseDelivery.PeerGone && leg.CloseReceived))
            {
                return;
            }

            failures.Add(outcome == CloseDelivery.TimedOut
                ? $"The close ({code}) to the {leg.Name} could not be delivered within {_settings.CloseTimeout.TotalSeconds:0.###} s (it is not reading); its connection was dropped."
                : $"The close ({code}) to the {leg.Name} could not be delivered: its connection is gone.");
            LogCloseUndelivered(_flow.Id, leg.Name, code, outcome);
        }
    }

    /// <summary>Aborts both TCP connections now, as mitmproxy's kill: no close frames.</summary>
    /// <remarks>
    /// A close already under way (a user's, a peer's, a protocol error's) keeps its code and side in the record, and the
    /// kill becomes the flow's error: the close did not complete, TCP was aborted. Only once both peers sent their close
    /// has the kill nothing left to cut short. A relay that already finished records nothing: shutdown kills whatever
    /// is still listed, and a flow that ended on its own must not read as killed.
    /// </remarks>
    public void Kill()
    {
        if (IsRunning
            && (_ws.TryClose(closedByClient: false, WebSocketCloseCodes.AbnormalClosure, "killed", Timestamps.Now(_time), byProxy: true)
                || !(_client.CloseReceived && _server.CloseReceived)))
        {
            _flow.Error ??= "Connection killed.";
        }

        _client.Abort();
        _server.Abort();
        _stop.Cancel();
    }

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

    private async Task RunInjectionsAsync(ChannelReader<Injection> queue, RelayLeg to, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var injection in queue.ReadAllAsync(cancellationToken))
            {
                var message = injection.Message;
                Interlocked.Add(ref to.IsClient ? ref _queuedToClient : ref _queuedToServer, -message.Content.Length);
                var (recorded, sent, closeSent) = (false, false, false);
                try
                {
                    await to.Sequence.WaitAsync(cancellationToken);
                    try
                    {
                        // Its time is when it takes its place in the flow, not when it was queued: behind a held
                        // message that can be long after, and the flow's times would run backwards.
                        message.Timestamp = Timestamps.Now(_time);
                        _store.AddMessage(_flow, message);
                        recorded = true;
                        await _addons.WebSocketMessageAsync(_flow, message, cancellationToken);
                        if (message.Dropped || message.IsModified)
                        {
                            _store.MessageChanged(_flow, message);
                        }

                        if (!message.Dropped)
                        {
                            closeSent = !await WriteAsync(to, message, static (leg, m) => WriteMessage(leg, m), flush: true, ignoreClosed: false, cancellationToken);
                            sent = !closeSent;
                        }
                    }
                    finally
                    {
                        to.Sequence.Release();
                    }

                    if (closeSent)
                    {
                        throw new InvalidOperationException($"Flow {_flow.Id}: the {to.Name} was sent a close before the injected message could follow; it was not sent.");
                    }

                    injection.Completion?.TrySetResult(message);
                }
                catch (Exception ex)
                {
                    if (recorded && !sent && !message.Dropped)
                    {
                        MarkUndelivered(message);
                    }

                    // Whoever awaits this injection (a REST call) must hear that it failed, and why.
                    injection.Completion?.TrySetException(closeSent ? ex : new InvalidOperationException($"Flow {_flow.Id} closed before the injected message was sent.", ex));
                    if (ex is not InvalidOperationException || !IsRunning)
                    {
                        throw;
                    }
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException or PeerGoneException || IsConnectionLoss(ex))
        {
            // The relay is ending; FinishAsync fails whatever is still queued.
        }
        catch (Exception ex)
        {
            LogUnexpected(_flow.Id, "injection", ex);
        }
    }

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

    /// <returns>False when nothing was written because the peer was already sent a close.</returns>
    private static async ValueTask<bool> WriteAsync<T>(RelayLeg to, T state, Action<RelayLeg, T> write, bool flush, bool ignoreClosed, CancellationToken cancellationToken)
    {
        await to.WriteLock.WaitAsync(cancellationToken);
        try
        {
            // Once a close went out nothing else may follow it (§5.5.1); the close itself passes ignoreClosed.
            if (to.CloseSent && !ignoreClosed)
            {
                return false;
            }

            write(to, state);
            if (flush)
            {
                await to.Output.FlushAsync(cancellationToken);
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

    private static async ValueTask FlushAsync(RelayLeg to, CancellationToken cancellationToken)
    {
        await to.WriteLock.WaitAsync(cancellationToken);
        try
        {
            await to.Output.FlushAsync(cancellationToken);
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

    private static bool IsConnectionLoss(Exception ex) =>
        ex is IOException or ObjectDisposedException or Microsoft.AspNetCore.Connections.ConnectionResetException;

    /// <summary>Writes one frame; frames to the server are masked.</summary>
    private static void WriteFrame(RelayLeg to, bool fin, bool rsv1, Opcode opcode, ReadOnlySpan<byte> payload)
    {
        var mask = MaskFor(to);
        var writer = to.Output;
        var headerLength = FrameCodec.HeaderLength(payload.Length, mask.HasValue);
        var span = writer.GetSpan(headerLength + Math.Min(payload.Length, 4096));
        FrameCodec.WriteHeader(span, fin, rsv1, opcode, payload.Length, mask);
        writer.Advance(headerLength);
        long offset = 0;
        while (!payload.IsEmpty)
        {
            // Large spans: each span is one write to the underlying stream when the pipe flushes.
            var destination = writer.GetSpan(Math.Min(payload.Length, 512 * 1024));
            var count = Math.Min(destination.Length, payload.Length);
            payload[..count].CopyTo(destination);
            if (mask is { } key)
            {
                FrameCodec.ApplyMask(destination[..count], key, offset);
            }

            writer.Advance(count);
            payload = payload[count..];
            offset += count;
        }
    }

    /// <summary>
    /// Frames to the client go unmasked; to the server each with a fresh, unpredictable key (RFC 6455 §5.3), never the
    /// client's: toward the server the proxy is the client, and a client picking its own key (all zeros, say) must not
    /// decide the bytes on the proxy's upstream wire. mitmproxy does the same.
    /// </summary>
    private static int? MaskFor(RelayLeg to) => to.IsClient ? null : NewMaskKey();

    private static int NewMaskKey()
    {
        Span<byte> key = stackalloc byte[4];
        RandomNumberGenerator.Fill(key);
        return BitConverter.ToInt32(key);
    }

    private async Task FinishAsync(PumpEnd firstEnd, Task<PumpEnd> other, Task injectToClient, Task injectToServer, bool clientAborted)
    {
        if (Interlocked.Exchange(ref _finished, 1) != 0)
        {
            return;
        }

        _toClient.Writer.TryComplete();
        _toServer.Writer.TryComplete();
        if (!other.IsCompleted)
        {
            // Drop the peer that did not answer (or was never told): cancel its pump and its pending read.
            _client.Input.CancelPendingRead();
            _server.Input.CancelPendingRead();
            await _stop.CancelAsync();
        }

        var otherEnd = await other;
        await _stop.CancelAsync();
        await _client.AwaitPendingWriteAsync(throwOnFailure: false);
        await _server.AwaitPendingWriteAsync(throwOnFailure: false);
        await Task.WhenAll(injectToClient, injectToServer);
        FailQueued(_toClient.Reader);
        FailQueued(_toServer.Reader);

        if (_ws.ClosedByClient is null)
        {
            _ws.TryClose(firstEnd == PumpEnd.Gone || clientAborted, WebSocketCloseCodes.AbnormalClosure, null, Timestamps.Now(_time));
        }

        LogRelayEnded(_flow.Id, firstEnd, otherEnd, _ws.CloseCode ?? 0);
        _flow.IsLive = false;
        await _addons.WebSocketEndAsync(_flow, CancellationToken.None);
        _store.FlowEnded(_flow);
    }

    private void FailQueued(ChannelReader<Injection> queue)
    {
        while (queue.TryRead(out var injection))
        {
            injection.Completion?.TrySetException(new InvalidOperationException($"Flow {_flow.Id} closed before the injected message was sent."));
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Flow {FlowId}: {Peer} went away: {Why}")]
    private partial void LogPeerGone(string flowId, string peer, string why);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: {Peer} is closed with {Code}: {Reason}")]
    private partial void LogProtocolError(string flowId, string peer, int code, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Flow {FlowId}: {Peer} did not take its close after its protocol error (it is not reading); its TCP connection is dropped")]
    private partial void LogOffenderDropped(string flowId, string peer);

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: the close ({Code}) to the {Peer} was not delivered ({Outcome}); its TCP connection is dropped")]
    private partial void LogCloseUndelivered(string flowId, string peer, int code, CloseDelivery outcome);

    [LoggerMessage(Level = LogLevel.Error, Message = "Flow {FlowId}: unexpected failure relaying ({Where})")]
    private partial void LogUnexpected(string flowId, string where, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Flow {FlowId} relay ended ({First}, {Other}), close code {Code}")]
    private partial void LogRelayEnded(string flowId, PumpEnd first, PumpEnd other, int code);

    /// <summary>A write to <see cref="Leg"/> failed because that peer's connection is gone.</summary>
    private sealed class PeerGoneException(RelayLeg leg, Exception inner) : Exception(inner.Message, inner)
    {
        public RelayLeg Leg { get; } = leg;
    }

    internal sealed record Injection(WebSocketMessage Message, TaskCompletionSource<WebSocketMessage>? Completion);

    internal enum CloseDelivery
    {
        Written,
        TimedOut,
        PeerGone,
    }

    internal enum PumpEnd
    {
        Closed,
        Gone,
        ProtocolError,
        Cancelled,
        Faulted,
    }
}

/// <summary>Too much injected content already waits to go out toward that peer; the message was not queued.</summary>
internal sealed class InjectionQueueFullException(string message) : InvalidOperationException(message);
