using System.Security.Cryptography;
using WsWeb.Core.WebSockets;

namespace WsWeb.Proxy.WebSockets;

// Writing frames: one writer at a time per leg, a lost connection turned into PeerGoneException.
internal sealed partial class WebSocketRelay
{
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
}
