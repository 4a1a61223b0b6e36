using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace WsWeb.Tests.Hubs;

/// <summary>One server-to-client invocation (SignalR message type 1).</summary>
internal sealed record HubInvocation(string Target, JsonElement[] Arguments)
{
    public string? String(int index) => Arguments[index].GetString();

    public long Long(int index) => Arguments[index].GetInt64();

    public JsonElement[] Array(int index) => [.. Arguments[index].EnumerateArray()];

    public override string ToString() => $"{Target}({string.Join(", ", Arguments.Select(a => a.ToString().Length > 80 ? a.ToString()[..80] + "…" : a.ToString()))})";
}

/// <summary>
/// A SignalR client speaking the JSON hub protocol over a plain <see cref="ClientWebSocket"/> (the .NET
/// SignalR client is not in our package feed). Connects without negotiation, which SignalR allows for
/// WebSockets, and splits what it reads on the 0x1E record separator.
/// </summary>
/// <remarks>
/// <see cref="PauseReading"/> stops pulling bytes off the socket, so the server's writes back up like a
/// frozen browser tab's; a small <c>receiveBufferSize</c> makes that happen after little data.
/// </remarks>
internal sealed class HubTestClient : IAsyncDisposable
{
    private const byte RecordSeparator = 0x1E;

    private readonly ClientWebSocket _socket;
    private readonly HttpMessageInvoker _invoker;
    private readonly Channel<HubInvocation> _invocations = Channel.CreateUnbounded<HubInvocation>();
    private readonly ConcurrentDictionary<string, TaskCompletionSource<JsonElement?>> _pending = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _handshake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private volatile TaskCompletionSource _reading = CompletedGate();
    private Task _reader = Task.CompletedTask;
    private int _nextInvocationId;

    private HubTestClient(ClientWebSocket socket, HttpMessageInvoker invoker)
    {
        _socket = socket;
        _invoker = invoker;
    }

    /// <summary>Completes with the server's close message error (null for a clean close) or when the socket ends.</summary>
    public TaskCompletionSource<string?> Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Invocations received so far, in order, whether or not a test consumed them.</summary>
    public ConcurrentQueue<HubInvocation> Received { get; } = new();

    public static async Task<HubTestClient> ConnectAsync(int webPort, int? receiveBufferSize = null, string path = "/hubs/flows")
    {
        // Our own connect callback so a test can shrink the socket's receive buffer before the handshake.
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                if (receiveBufferSize is { } size)
                {
                    socket.ReceiveBufferSize = size;
                }

                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        var invoker = new HttpMessageInvoker(handler);
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{webPort}{path}"), invoker, timeout.Token);
        }
        catch
        {
            socket.Dispose();
            invoker.Dispose();
            throw;
        }

        var client = new HubTestClient(socket, invoker);
        client._reader = Task.Run(client.ReadAsync);
        await client.SendRecordAsync("""{"protocol":"json","version":1}""");
        await client._handshake.Task.WaitAsync(TimeSpan.FromSeconds(10));
        return client;
    }

    /// <summary>Invokes a hub method and waits for its completion; returns its result, throws <see cref="HubErrorException"/> on an error.</summary>
    public async Task<JsonElement?> InvokeAsync(string target, params object?[] arguments)
    {
        var id = Interlocked.Increment(ref _nextInvocationId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var completion = new TaskCompletionSource<JsonElement?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = completion;
        await SendRecordAsync(JsonSerializer.Serialize(new { type = 1, invocationId = id, target, arguments }));
        return await completion.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    /// <summary>Invokes a hub method without asking for a completion (fire and forget).</summary>
    public Task SendAsync(string target, params object?[] arguments) =>
        SendRecordAsync(JsonSerializer.Serialize(new { type = 1, target, arguments }));

    public async Task<HubInvocation> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        return await _invocations.Reader.ReadAsync(cts.Token);
    }

    /// <summary>Reads invocations until one matches; the skipped ones are returned too, in order.</summary>
    public async Task<(HubInvocation Match, List<HubInvocation> Skipped)> ReceiveUntilAsync(Func<HubInvocation, bool> match, TimeSpan? timeout = null)
    {
        var skipped = new List<HubInvocation>();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            HubInvocation next;
            try
            {
                next = await _invocations.Reader.ReadAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"No matching invocation; got {skipped.Count}: {string.Join("; ", skipped.TakeLast(5))}");
            }

            if (match(next))
            {
                return (next, skipped);
            }

            skipped.Add(next);
        }
    }

    /// <summary>All invocations that arrive within <paramref name="quiet"/> of each other.</summary>
    public async Task<List<HubInvocation>> DrainAsync(TimeSpan quiet)
    {
        var result = new List<HubInvocation>();
        while (true)
        {
            try
            {
                result.Add(await ReceiveAsync(quiet));
            }
            catch (OperationCanceledException)
            {
                return result;
            }
        }
    }

    /// <summary>Stops reading from the socket; the server's writes then back up in the kernel and in its buffers.</summary>
    public void PauseReading() => _reading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void ResumeReading() => _reading.TrySetResult();

    private static TaskCompletionSource CompletedGate()
    {
        var gate = new TaskCompletionSource();
        gate.SetResult();
        return gate;
    }

    private async Task SendRecordAsync(string json)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(json) + 1];
        Encoding.UTF8.GetBytes(json, bytes);
        bytes[^1] = RecordSeparator;
        await _sendLock.WaitAsync();
        try
        {
            await _socket.SendAsync(bytes, WebSocketMessageType.Text, true, CancellationToken.None);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ReadAsync()
    {
        var buffer = new byte[64 * 1024];
        var pending = new ArrayBufferWriter<byte>();
        try
        {
            while (true)
            {
                await _reading.Task.WaitAsync(_stop.Token);

                // While paused, read at most a little: the point of pausing is that the server's writes back up.
                var result = await _socket.ReceiveAsync(_reading.Task.IsCompleted ? buffer : buffer.AsMemory(0, 1024), _stop.Token);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    Closed.TrySetResult(_socket.CloseStatusDescription);
                    return;
                }

                // Only the new bytes can hold a separator we have not seen yet.
                var separator = buffer.AsSpan(0, result.Count).IndexOf(RecordSeparator);
                pending.Write(buffer.AsSpan(0, result.Count));
                if (separator < 0)
                {
                    continue;
                }

                var span = pending.WrittenSpan;
                var consumed = 0;
                int end;
                while ((end = span[consumed..].IndexOf(RecordSeparator)) >= 0)
                {
                    Dispatch(span.Slice(consumed, end));
                    consumed += end + 1;
                }

                var rest = span[consumed..].ToArray();
                pending.Clear();
                pending.Write(rest);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            Closed.TrySetResult("connection lost: " + ex.Message);
        }
        finally
        {
            _invocations.Writer.TryComplete();
            _handshake.TrySetException(new InvalidOperationException("closed before the handshake"));
            foreach (var waiting in _pending.Values)
            {
                waiting.TrySetException(new InvalidOperationException("connection closed"));
            }
        }
    }

    private void Dispatch(ReadOnlySpan<byte> record)
    {
        var reader = new Utf8JsonReader(record);
        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        if (!_handshake.Task.IsCompleted)
        {
            // The handshake response is "{}" or {"error": "..."}.
            if (root.TryGetProperty("error", out var error))
            {
                _handshake.TrySetException(new InvalidOperationException("handshake refused: " + error.GetString()));
            }
            else
            {
                _handshake.TrySetResult();
            }

            return;
        }

        switch (root.GetProperty("type").GetInt32())
        {
            case 1:
                var invocation = new HubInvocation(
                    root.GetProperty("target").GetString()!,
                    [.. root.GetProperty("arguments").EnumerateArray().Select(a => a.Clone())]);
                Received.Enqueue(invocation);
                _invocations.Writer.TryWrite(invocation);
                break;
            case 3:
                var id = root.GetProperty("invocationId").GetString()!;
                if (_pending.TryRemove(id, out var completion))
                {
                    if (root.TryGetProperty("error", out var failure))
                    {
                        completion.TrySetException(new HubErrorException(failure.GetString()));
                    }
                    else
                    {
                        completion.TrySetResult(root.TryGetProperty("result", out var value) ? value.Clone() : null);
                    }
                }

                break;
            case 7:
                Closed.TrySetResult(root.TryGetProperty("error", out var reason) ? reason.GetString() : null);
                break;
            default:
                // 6 = ping: nothing to do.
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _reading.TrySetResult();
        _socket.Abort();
        await _reader;
        _socket.Dispose();
        _invoker.Dispose();
        _stop.Dispose();
        _sendLock.Dispose();
    }
}

internal sealed class HubErrorException(string? message) : Exception(message);
