using System.Buffers;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using WsWeb.Core;
using WsWeb.Core.Addons;
using WsWeb.Core.Flows;
using WsWeb.Core.WebSockets;
using WsWeb.Proxy.Addons;

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
        // The peer the other pump reads from: upstream reads the client, downstream reads the server.
        var otherLeg = first == upstream ? _server : _client;
        if (otherLeg.CloseSent)
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
        if (!IsRunning || target.CloseSent || !(toClient ? _toClient : _toServer).Writer.TryWrite(injection))
        {
            throw new InvalidOperationException($"Flow {_flow.Id} is closed; nothing can be injected.");
        }

        return injection;
    }

    /// <summary>Sends a close frame to the chosen peer(s); the other direction follows the peer's reply.</summary>
    public async Task CloseAsync(CloseTarget target, int code, string? reason, CancellationToken cancellationToken)
    {
        if (!IsRunning)
        {
            throw new InvalidOperationException($"Flow {_flow.Id} is closed.");
        }

        _ws.TryClose(closedByClient: target == CloseTarget.Server, code, reason, Timestamps.Now(_time), byProxy: true);
        if (target != CloseTarget.Server)
        {
            await SendCloseAsync(_client, code, reason, cancellationToken);
        }

        if (target != CloseTarget.Client)
        {
            await SendCloseAsync(_server, code, reason, cancellationToken);
        }
    }

    /// <summary>Aborts both TCP connections now.</summary>
    public void Kill()
    {
        if (_ws.TryClose(closedByClient: false, WebSocketCloseCodes.AbnormalClosure, "killed", Timestamps.Now(_time), byProxy: true))
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
        var state = new MessageAssembler(from.IsClient, _settings.MaxMessageSize);
        var pendingFlush = false;
        try
        {
            while (true)
            {
                if (!reader.TryRead(out var result))
                {
                    if (pendingFlush)
                    {
                        await FlushAsync(to, cancellationToken);
                        pendingFlush = false;
                    }

                    result = await reader.ReadAsync(cancellationToken);
                }

                if (result.IsCanceled)
                {
                    return PumpEnd.Cancelled;
                }

                var buffer = result.Buffer;
                var consumed = buffer.Start;
                try
                {
                    while (true)
                    {
                        var step = state.Read(ref buffer);
                        consumed = buffer.Start;
                        if (step == AssemblerStep.NeedMoreData)
                        {
                            break;
                        }

                        if (step == AssemblerStep.Control)
                        {
                            if (await HandleControlAsync(from, to, state, cancellationToken))
                            {
                                return PumpEnd.Closed;
                            }
                        }
                        else
                        {
                            await HandleMessageAsync(from, to, state, cancellationToken);
                        }

                        pendingFlush = true;
                    }
                }
                finally
                {
                    reader.AdvanceTo(consumed, buffer.End);
                }

                if (result.IsCompleted)
                {
                    return OnPeerGone(from, "closed the TCP connection without a close frame");
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
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or Microsoft.AspNetCore.Connections.ConnectionResetException)
        {
            return OnPeerGone(from, ex.Message);
        }
        finally
        {
            state.Dispose();
        }
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
            if (to.TryMarkCloseSent())
            {
                await WriteAsync(to, state.ControlPayload.ToArray(), static (leg, payload) => WriteFrame(leg, true, false, Opcode.Close, payload, null), flush: true, ignoreClosed: true, cancellationToken);
            }

            return true;
        }

        _ws.CountControl(opcode, from.IsClient);
        if (!to.CloseSent)
        {
            var payload = state.ControlPayload.ToArray();
            var mask = state.ControlMaskKey;
            await WriteAsync(to, (Opcode: opcode, Payload: payload, Mask: mask), static (leg, f) => WriteFrame(leg, true, false, f.Opcode, f.Payload, f.Mask), flush: false, ignoreClosed: false, cancellationToken);
        }

        return false;
    }

    private async ValueTask HandleMessageAsync(RelayLeg from, RelayLeg to, MessageAssembler state, CancellationToken cancellationToken)
    {
        var message = new WebSocketMessage(state.MessageType, from.IsClient, state.TakeContent(), Timestamps.Now(_time));
        var fragments = state.Fragments;
        _store.AddMessage(_flow, message);
        await _addons.WebSocketMessageAsync(_flow, message, cancellationToken);
        if (message.Dropped || message.IsModified)
        {
            _store.MessageChanged(_flow, message);
        }

        if (message.Dropped || to.CloseSent)
        {
            return;
        }

        if (message.IsModified || fragments.Count <= 1)
        {
            var mask = fragments.Count == 1 && !message.IsModified ? fragments[0].MaskKey : (int?)null;
            await WriteAsync(to, (Message: message, Mask: mask), static (leg, m) => WriteFrame(leg, true, false, m.Message.Type, m.Message.Content, m.Mask), flush: false, ignoreClosed: true, cancellationToken);
        }
        else
        {
            // Unmodified: keep the original frame boundaries (and mask keys) on the way out.
            await WriteAsync(to, (Message: message, Fragments: fragments), static (leg, m) =>
            {
                long offset = 0;
                for (var i = 0; i < m.Fragments.Count; i++)
                {
                    var fragment = m.Fragments[i];
                    var payload = m.Message.Content.AsSpan((int)offset, (int)fragment.Length);
                    WriteFrame(leg, i == m.Fragments.Count - 1, false, i == 0 ? m.Message.Type : Opcode.Continuation, payload, fragment.MaskKey);
                    offset += fragment.Length;
                }
            }, flush: false, ignoreClosed: true, cancellationToken);
        }
    }

    private async Task RunInjectionsAsync(ChannelReader<Injection> queue, RelayLeg to, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var injection in queue.ReadAllAsync(cancellationToken))
            {
                var message = injection.Message;
                _store.AddMessage(_flow, message);
                await _addons.WebSocketMessageAsync(_flow, message, cancellationToken);
                if (message.Dropped || message.IsModified)
                {
                    _store.MessageChanged(_flow, message);
                }

                if (!message.Dropped)
                {
                    await WriteAsync(to, message, static (leg, m) => WriteFrame(leg, true, false, m.Type, m.Content, null), flush: true, ignoreClosed: false, cancellationToken);
                }

                injection.Completion?.TrySetResult(message);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException or IOException or ObjectDisposedException)
        {
            // The relay is ending; FinishAsync fails whatever is still queued.
        }
    }

    private async Task FailAsync(RelayLeg offender, RelayLeg other, int code, string reason)
    {
        _flow.Error ??= $"{offender.Name} violated the WebSocket protocol: {reason}";
        _ws.TryClose(offender.IsClient, code, reason, Timestamps.Now(_time), byProxy: true);
        LogProtocolError(_flow.Id, offender.Name, code, reason);
        using var timeout = new CancellationTokenSource(_settings.CloseTimeout, _time);
        await SendCloseAsync(offender, code, reason, timeout.Token);
        await SendCloseAsync(other, code, reason, timeout.Token);
    }

    private async Task SendCloseAsync(RelayLeg to, int code, string? reason, CancellationToken cancellationToken)
    {
        if (!to.TryMarkCloseSent())
        {
            return;
        }

        var payload = new byte[FrameCodec.MaxControlPayload];
        var length = FrameCodec.WriteClosePayload(payload, code, reason);
        try
        {
            await WriteAsync(to, payload[..length], static (leg, p) => WriteFrame(leg, true, false, Opcode.Close, p, null), flush: true, ignoreClosed: true, cancellationToken);
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The peer is already gone; the close is recorded all the same.
        }
    }

    private static async ValueTask WriteAsync<T>(RelayLeg to, T state, Action<RelayLeg, T> write, bool flush, bool ignoreClosed, CancellationToken cancellationToken)
    {
        await to.WriteLock.WaitAsync(cancellationToken);
        try
        {
            // Once a close went out nothing else may follow it (§5.5.1); the close itself passes ignoreClosed.
            if (to.CloseSent && !ignoreClosed)
            {
                return;
            }

            write(to, state);
            if (flush)
            {
                await to.Output.FlushAsync(cancellationToken);
            }
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
        finally
        {
            to.WriteLock.Release();
        }
    }

    /// <summary>Writes one frame; frames to the server are masked (with the client's key when forwarding unchanged).</summary>
    private static void WriteFrame(RelayLeg to, bool fin, bool rsv1, Opcode opcode, ReadOnlySpan<byte> payload, int? originalMask)
    {
        int? mask = to.IsClient ? null : originalMask ?? NewMaskKey();
        var writer = to.Output;
        var headerLength = FrameCodec.HeaderLength(payload.Length, mask.HasValue);
        var span = writer.GetSpan(headerLength + Math.Min(payload.Length, 4096));
        FrameCodec.WriteHeader(span, fin, rsv1, opcode, payload.Length, mask);
        writer.Advance(headerLength);
        long offset = 0;
        while (!payload.IsEmpty)
        {
            var destination = writer.GetSpan(Math.Min(payload.Length, 64 * 1024));
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Flow {FlowId}: {Peer} violated the WebSocket protocol, closing with {Code}: {Reason}")]
    private partial void LogProtocolError(string flowId, string peer, int code, string reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Flow {FlowId} relay ended ({First}, {Other}), close code {Code}")]
    private partial void LogRelayEnded(string flowId, PumpEnd first, PumpEnd other, int code);

    internal sealed record Injection(WebSocketMessage Message, TaskCompletionSource<WebSocketMessage>? Completion);

    internal enum PumpEnd
    {
        Closed,
        Gone,
        ProtocolError,
        Cancelled,
    }
}
