using System.Buffers;
using System.IO.Pipelines;

namespace WsWeb.Proxy.WebSockets;

/// <summary>
/// One peer of a relayed WebSocket: the client (behind Kestrel's upgrade stream) or the server
/// (our upstream connection). Writes from the pump and from injections share <see cref="WriteLock"/>
/// so frames of two messages never interleave.
/// </summary>
internal sealed class RelayLeg(
    string name,
    bool isClient,
    PipeReader input,
    PipeWriter output,
    Action abort,
    MessageInflater? inflater = null,
    MessageDeflater? deflater = null,
    Stream? transport = null,
    bool ownsPipes = true,
    System.Net.Sockets.Socket? socket = null) : IDisposable
{
    /// <summary>The peer's TCP socket, when known: watched for the peer leaving while the relay is not reading it.</summary>
    public System.Net.Sockets.Socket? Socket { get; } = socket;

    /// <summary>
    /// The stream under <see cref="Input"/>/<see cref="Output"/>, when large payloads may bypass the pipes:
    /// reads only once the pipe holds no unconsumed bytes, writes only under <see cref="WriteLock"/> after a flush.
    /// </summary>
    public Stream? Transport { get; } = transport;

    private int _closeSent;
    private int _closeReceived;
    private int _closeWriteFailed;

    public string Name { get; } = name;

    /// <summary>True for the client leg: its frames arrive masked, and frames to it go unmasked.</summary>
    public bool IsClient { get; } = isClient;

    public PipeReader Input { get; } = input;

    public PipeWriter Output { get; } = output;

    public SemaphoreSlim WriteLock { get; } = new(1, 1);

    /// <summary>
    /// Held for a message bound for this peer from its recording until its write has begun, by the relay
    /// pump and by injections alike: the peer gets messages in the order of their indices, and a message
    /// held by a hook (intercept) keeps later ones in this direction, injected or not, behind it.
    /// </summary>
    public SemaphoreSlim Sequence { get; } = new(1, 1);

    /// <summary>
    /// True while a hook holds a message this peer sent (intercept): the pump then passes on the pings and pongs it
    /// sends meanwhile. Touched only by the pump reading this peer.
    /// </summary>
    public bool HoldingMessage { get; set; }

    /// <summary>Decompresses what this peer sends, when permessage-deflate was negotiated on this leg.</summary>
    public MessageInflater? Inflater { get; } = inflater;

    /// <summary>Compresses what we send to this peer; used only under <see cref="WriteLock"/>.</summary>
    public MessageDeflater? Deflater { get; } = deflater;

    /// <summary>Scratch for <see cref="Deflater"/> output, reused under <see cref="WriteLock"/>.</summary>
    public ArrayBufferWriter<byte> CompressBuffer => _compressBuffer ??= new ArrayBufferWriter<byte>();

    /// <summary>Scratch for <see cref="Inflater"/> output, used only by this leg's pump.</summary>
    public ArrayBufferWriter<byte> InflateBuffer => _inflateBuffer ??= new ArrayBufferWriter<byte>();

    private const int LargeBuffer = 64 * 1024;

    private ArrayBufferWriter<byte>? _compressBuffer;
    private ArrayBufferWriter<byte>? _inflateBuffer;

    /// <summary>One huge message must not pin its buffer for the rest of the connection.</summary>
    public void ReleaseLargeCompressBuffer()
    {
        if (_compressBuffer is { Capacity: > LargeBuffer })
        {
            _compressBuffer = null;
        }
    }

    public void ReleaseLargeInflateBuffer()
    {
        if (_inflateBuffer is { Capacity: > LargeBuffer })
        {
            _inflateBuffer = null;
        }
    }

    /// <summary>
    /// Ends both pipes once the relay is done (or only flushes them, when the connection owns them).
    /// Takes the write lock so a late close from the API cannot write into a pipe being completed; a
    /// writer stuck on a dead peer is not waited for long.
    /// </summary>
    public async Task CompleteAsync()
    {
        var locked = await WriteLock.WaitAsync(TimeSpan.FromSeconds(5));
        try
        {
            TryMarkCloseSent();
            if (ownsPipes)
            {
                try
                {
                    // Completing flushes what is left, into a stream the peer may have closed or we disposed on abort.
                    await Output.CompleteAsync();
                }
                catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException)
                {
                    // The peer is gone; nothing is left to deliver to it.
                }

                await Input.CompleteAsync();
            }
            else
            {
                // The connection owns these pipes and completes them when it ends; just push out what is left.
                try
                {
                    await Output.FlushAsync();
                }
                catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException)
                {
                    // The peer is gone; the connection's own disposal cleans up.
                }
            }
        }
        finally
        {
            if (locked)
            {
                WriteLock.Release();
            }
        }
    }

    /// <summary>A close frame was claimed for this peer (written, or being written); no data may follow it.</summary>
    public bool CloseSent => Volatile.Read(ref _closeSent) != 0;

    /// <summary>
    /// The close claimed by <see cref="TryMarkCloseSent"/> never went out (the peer did not take it in time, or
    /// is gone). It still counts as sent, so nothing else follows it; but the peer owes no reply to wait for.
    /// </summary>
    public bool CloseWriteFailed => Volatile.Read(ref _closeWriteFailed) != 0;

    /// <summary>This peer sent its close frame.</summary>
    public bool CloseReceived => Volatile.Read(ref _closeReceived) != 0;

    /// <summary>Marks the close as sent; false if it already was.</summary>
    public bool TryMarkCloseSent() => Interlocked.Exchange(ref _closeSent, 1) == 0;

    public void MarkCloseReceived() => Volatile.Write(ref _closeReceived, 1);

    public void MarkCloseWriteFailed() => Volatile.Write(ref _closeWriteFailed, 1);

    public void Abort() => abort();

    /// <summary>A large write still going out to this peer (only the opposite pump starts one).</summary>
    public Task? PendingWrite { get; set; }

    /// <summary>Waits for <see cref="PendingWrite"/>; its failure surfaces here unless told otherwise.</summary>
    public async ValueTask AwaitPendingWriteAsync(bool throwOnFailure = true)
    {
        if (PendingWrite is not { } pending)
        {
            return;
        }

        PendingWrite = null;
        try
        {
            await pending;
        }
        catch (Exception) when (!throwOnFailure)
        {
            // The relay is ending; the peer's failure is recorded by its own pump.
        }
    }

    public void Dispose()
    {
        Inflater?.Dispose();
        Deflater?.Dispose();
        WriteLock.Dispose();
        Sequence.Dispose();
    }
}
