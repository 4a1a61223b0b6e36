using System.Buffers;
using System.IO.Pipelines;

namespace WsWeb.Proxy.Forwarding;

/// <summary>
/// Writes what it is given as chunks of HTTP/1.1 chunked coding (RFC 9112 §7.1) to Kestrel's response, for a response
/// relayed with the server's own Transfer-Encoding (<see cref="TransferCoding.CodedThenChunked"/>): Kestrel frames a
/// response whose application set Transfer-Encoding itself only when chunked is not last, so here the framing is ours.
/// Each chunk is written to the pipe whole (size line, data, CRLF) and goes out with the copy loop's one flush.
/// </summary>
internal sealed class ChunkedFraming(PipeWriter writer) : WriteOnlyStream
{
    /// <summary>The size line: up to 8 hex digits for an int, then CRLF.</summary>
    private readonly byte[] _sizeLine = new byte[10];

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            // An empty chunk would end the body.
            return;
        }

        buffer.Length.TryFormat(_sizeLine, out var digits, "x", System.Globalization.CultureInfo.InvariantCulture);
        _sizeLine[digits] = (byte)'\r';
        _sizeLine[digits + 1] = (byte)'\n';
        writer.Write(_sizeLine.AsSpan(0, digits + 2));
        writer.Write(buffer);
        writer.Write("\r\n"u8);
    }

    /// <summary>Writes the last chunk and the empty trailer section, and sends them.</summary>
    public async Task EndAsync(CancellationToken cancellationToken)
    {
        writer.Write("0\r\n\r\n"u8);
        await writer.FlushAsync(cancellationToken);
    }

    public override async Task FlushAsync(CancellationToken cancellationToken) => await writer.FlushAsync(cancellationToken);

    public override void Flush() => writer.FlushAsync().AsTask().GetAwaiter().GetResult();
}
