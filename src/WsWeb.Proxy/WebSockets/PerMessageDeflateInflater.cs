using System.Buffers;
using System.IO.Compression;

namespace WsWeb.Proxy.WebSockets;

/// <summary>
/// Decompresses the messages a peer sends on one leg (RFC 7692 §7.2.2). Not thread-safe: one instance
/// per direction per leg.
/// </summary>
/// <remarks>
/// One raw-inflate stream reads from a reusable feeder, so the window survives between messages
/// (context takeover) without allocating per message. The inflater always uses a 15-bit window, which
/// inflates data compressed with any smaller window, so the negotiated window sizes do not matter here.
/// </remarks>
internal sealed class MessageInflater : IDisposable
{
    private readonly bool _noContextTakeover;
    private readonly DeflateInputStream _input = new();
    private DeflateStream? _inflate;
    private bool _disposed;

    /// <param name="noContextTakeover">The peer starts every message with an empty window, so we reset too.</param>
    /// <param name="maxMessageSize">The largest decompressed message accepted.</param>
    public MessageInflater(bool noContextTakeover, long maxMessageSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxMessageSize);
        _noContextTakeover = noContextTakeover;
        MaxMessageSize = maxMessageSize;
    }

    public long MaxMessageSize { get; }

    /// <summary>
    /// Inflates one whole message: the payloads of all its frames, in order, without the 00 00 FF FF
    /// tail (it is added here), and appends the result to <paramref name="output"/>.
    /// </summary>
    /// <returns>The number of bytes appended.</returns>
    /// <exception cref="DecompressedMessageTooLargeException">
    /// The message inflates to more than <see cref="MaxMessageSize"/>; inflating stops there, so a
    /// compression bomb costs at most that much. Close with 1009.
    /// </exception>
    /// <exception cref="InvalidDataException">The payload is not valid DEFLATE data. Fail the connection.</exception>
    /// <remarks>After either exception <paramref name="output"/> holds a partial message and the window is lost.</remarks>
    public long Inflate(ReadOnlySequence<byte> payload, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        ObjectDisposedException.ThrowIf(_disposed, this);

        if (payload.IsEmpty)
        {
            // Nothing was compressed. Feeding just the tail would leave half a stored-block header in
            // the window and corrupt the next message.
            return 0;
        }

        var completed = false;
        try
        {
            var total = InflateCore(payload, output);
            completed = true;
            return total;
        }
        catch (IOException e)
        {
            // zlib's other failures surface as IOException (ZLibException); callers get one type to map to 1007.
            throw new InvalidDataException("The compressed message is not valid DEFLATE data.", e);
        }
        finally
        {
            _input.Clear();
            if (!completed || _noContextTakeover)
            {
                ResetStream();
            }
        }
    }

    /// <summary>Inflates one whole message held in one buffer.</summary>
    public long Inflate(ReadOnlyMemory<byte> payload, IBufferWriter<byte> output) => Inflate(new ReadOnlySequence<byte>(payload), output);

    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            ResetStream();
        }
    }

    private long InflateCore(ReadOnlySequence<byte> payload, IBufferWriter<byte> output)
    {
        var payloadLength = payload.Length;
        _input.SetPayload(payload);
        _inflate ??= new DeflateStream(_input, CompressionMode.Decompress, leaveOpen: true);
        long total = 0;
        var restarted = false;
        while (true)
        {
            // Ask for at most one byte past the limit: going over is then detected without inflating more.
            var room = MaxMessageSize - total;
            var span = output.GetSpan(room < 4096 ? 1 : 4096);
            if (room < span.Length)
            {
                span = span[..(int)(room + 1)];
            }

            var read = _inflate.Read(span);
            if (read == 0)
            {
                if (_input.IsDrained)
                {
                    return total;
                }

                if (!restarted && total == 0 && _input.PayloadRemaining == payloadLength)
                {
                    // The previous message ended its DEFLATE stream with BFINAL (§7.2.3.4), so the stream
                    // takes no more input. The peer must then have started a fresh stream: so do we.
                    restarted = true;
                    ResetStream();
                    _input.SetPayload(payload);
                    _inflate = new DeflateStream(_input, CompressionMode.Decompress, leaveOpen: true);
                    continue;
                }

                // This message ended with BFINAL; what is left is the tail we appended (or junk after the
                // end). The next message starts a fresh stream.
                ResetStream();
                return total;
            }

            output.Advance(read);
            total += read;
            if (total > MaxMessageSize)
            {
                throw new DecompressedMessageTooLargeException(MaxMessageSize);
            }
        }
    }

    private void ResetStream()
    {
        _inflate?.Dispose();
        _inflate = null;
    }
}

/// <summary>A compressed message inflates to more than the configured maximum; the relay closes with 1009.</summary>
internal sealed class DecompressedMessageTooLargeException : Exception
{
    public DecompressedMessageTooLargeException(long limit)
        : base($"The decompressed message exceeds the limit of {limit} bytes.")
    {
        Limit = limit;
    }

    public DecompressedMessageTooLargeException()
    {
    }

    public DecompressedMessageTooLargeException(string message)
        : base(message)
    {
    }

    public DecompressedMessageTooLargeException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public long Limit { get; }
}
