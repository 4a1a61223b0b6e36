using System.Buffers;
using System.IO.Compression;

namespace WsWeb.Proxy.WebSockets;

/// <summary>
/// Compresses the messages one endpoint sends on one leg (RFC 7692 §7.2.1). Not thread-safe: one
/// instance per direction per leg, used by that direction's pump only.
/// </summary>
/// <remarks>
/// With context takeover a single raw-deflate stream runs for the whole connection and each message
/// ends with a sync flush, so later messages can refer back to earlier ones. Without it the stream is
/// recreated per message: System.IO.Compression has no deflateReset, and a fresh stream is the only way
/// to empty the window.
/// </remarks>
internal sealed class MessageDeflater : IDisposable
{
    private readonly bool _noContextTakeover;
    private readonly ZLibCompressionOptions _options;
    private readonly DeflateOutputStream _output = new();
    private DeflateStream? _deflate;
    private bool _disposed;

    /// <param name="noContextTakeover">Start every message with an empty window.</param>
    /// <param name="maxWindowBits">The window the peer allows us; only 15 is possible with System.IO.Compression.</param>
    /// <param name="level">Fastest by default: the proxy compresses on the relay path, where latency matters more than ratio.</param>
    public MessageDeflater(bool noContextTakeover = false, int maxWindowBits = DeflateParameters.MaxWindowBits, CompressionLevel level = CompressionLevel.Fastest)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxWindowBits, DeflateParameters.MinWindowBits);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(maxWindowBits, DeflateParameters.MaxWindowBits);
        if (maxWindowBits != DeflateParameters.MaxWindowBits)
        {
            // Negotiation never agrees to this (see PerMessageDeflateNegotiation); reaching it is a bug.
            throw new NotSupportedException("System.IO.Compression compresses with a 15-bit window only.");
        }

        _noContextTakeover = noContextTakeover;
        _options = new ZLibCompressionOptions
        {
            CompressionLevel = level switch
            {
                CompressionLevel.NoCompression => 0,
                CompressionLevel.Fastest => 1,
                CompressionLevel.SmallestSize => 9,
                _ => 6,
            },
        };
    }

    /// <summary>
    /// Appends the compressed payload of one whole message to <paramref name="output"/>, without the
    /// trailing 00 00 FF FF. Send it with RSV1 set on the first frame, fragmented as you like.
    /// </summary>
    /// <returns>The number of bytes appended.</returns>
    public int Compress(ReadOnlySpan<byte> message, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        ObjectDisposedException.ThrowIf(_disposed, this);

        if (message.IsEmpty)
        {
            // zlib's sync flush writes nothing when given nothing, and an empty payload would make the
            // peer's decoder read the 00 00 FF FF tail as the start of a stored block. A lone 0x00 is an
            // empty stored block once the tail is added (RFC 7692 §7.2.3.6), and leaves our own stream
            // untouched, so the window carries on.
            output.Write((ReadOnlySpan<byte>)[0x00]);
            return 1;
        }

        _output.SetTarget(output);
        try
        {
            _deflate ??= new DeflateStream(_output, _options, leaveOpen: true);
            _deflate.Write(message);
            _deflate.Flush(); // Z_SYNC_FLUSH: byte-aligned, ends with an empty stored block
            if (!_output.TryEndWithFlushTail())
            {
                throw new InvalidOperationException("The deflate stream did not end the message with a sync flush.");
            }

            return checked((int)_output.Written);
        }
        catch
        {
            // Our window no longer matches what the peer saw; start over with a clean stream.
            ResetStream();
            throw;
        }
        finally
        {
            _output.SetTarget(null);
            if (_noContextTakeover)
            {
                ResetStream();
            }
        }
    }

    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            ResetStream();
        }
    }

    private void ResetStream()
    {
        // The output is detached by now, so the final block Dispose writes is discarded.
        _output.SetTarget(null);
        _deflate?.Dispose();
        _deflate = null;
    }
}
