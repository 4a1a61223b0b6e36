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
/// <para>
/// One class in six files: this one (state, the control API, the end), <c>.Pump</c> (reading a direction),
/// <c>.Forward</c> (a message recorded, through the addons and out), <c>.Injections</c>, <c>.Close</c> (protocol errors
/// and closes a peer may not read) and <c>.Wire</c> (writing frames).
/// </para>
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
